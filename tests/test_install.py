"""A real, non-editable install: the wheel carries the content and works from any folder.

The wheel is built from a copy of the project (so no build/ or egg-info lands in the checkout)
with this venv's setuptools and no network, installed into a throw-away venv that borrows this
venv's dependencies, and run from a folder that has no content of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("pyproject.toml", "README.md", "bot", "handlers", "content")

pytestmark = pytest.mark.install


def run(*args: str | Path, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """A command with a bare environment: no CONTENT_DIR, no PYTHONPATH, nothing of ours."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd)}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, input=input, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def files_under(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away venv with the project installed from its wheel; returns the venv."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    wheel_args = ("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist")
    built = run(*pip, *wheel_args, source, cwd=tmp)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("ayerpoth-*.whl")
    venv = tmp / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    # The dependencies come from this venv, added after the install so pip never saw them (this
    # venv's own editable ayerpoth is not on that path: its .pth files are not read from there).
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp)
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site.stdout.strip()) / "_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


def site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python3*/site-packages")
    return found


def test_the_wheel_ships_every_content_file(installed: Path) -> None:
    shipped = site_packages(installed) / "bot" / "_content"
    assert files_under(shipped) == files_under(installed.parent / "source" / "content")


def test_the_wheel_ships_the_card_fonts_and_their_licence(installed: Path) -> None:
    fonts = site_packages(installed) / "bot" / "cards" / "fonts"
    assert files_under(fonts) == files_under(ROOT / "bot" / "cards" / "fonts")
    assert "SIL OPEN FONT LICENSE Version 1.1" in (fonts / "OFL.txt").read_text("utf-8")


def test_an_installed_bot_checks_its_content_from_another_folder(installed: Path) -> None:
    elsewhere = installed.parent / "elsewhere"
    elsewhere.mkdir()
    result = run(installed / "bin" / "ayerpoth", "content", "check", cwd=elsewhere)
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    assert "content OK" in last  # picture cards too: laid out with the fonts in the wheel
    # the copy inside the installed package, not the checkout's content/
    assert str(site_packages(installed) / "bot" / "_content") in last, last


def test_an_installed_playground_starts_from_another_folder(installed: Path) -> None:
    elsewhere = installed.parent / "playground"
    elsewhere.mkdir()
    result = run(
        installed / "bin" / "ayerpoth", "playground", "--no-color", cwd=elsewhere, input="4\nq\n"
    )
    assert result.returncode == 0, result.stderr
    assert "আয়ের পথ" in result.stdout and "(edited)" in result.stdout
    assert "file is missing" not in result.stdout + result.stderr


def test_a_missing_content_folder_is_one_line_naming_it(installed: Path) -> None:
    elsewhere = installed.parent / "missing"
    elsewhere.mkdir()
    ayerpoth = installed / "bin" / "ayerpoth"
    wrong = elsewhere / "no-such-content"
    (elsewhere / ".env").write_text(f"CONTENT_DIR={wrong}\n")
    result = run(ayerpoth, "content", "check", cwd=elsewhere)
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.splitlines() == [
        f"ayerpoth: configuration error: CONTENT_DIR: there is no folder {wrong}"
    ]
    (elsewhere / ".env").unlink()
    # a broken install: the package lost its content
    shipped = site_packages(installed) / "bot" / "_content"
    shipped.rename(shipped.with_name("_content.away"))
    try:
        result = run(ayerpoth, "playground", cwd=elsewhere, input="q\n")
    finally:
        shipped.with_name("_content.away").rename(shipped)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert str(shipped) in line and "reinstall" in line, line
