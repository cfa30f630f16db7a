"""Groups: one welcome when added, /methods with compact cards, /help, and /language for admins.

Everything here is shared by the whole group, so the personal screens (my path, the quiz, ticking
steps) stay in private chats; a card's button opens the full card there by deep link. Group
buttons have their own callback data (`gcard:`, `glist`) and are only taken in groups, and this
module is registered first, so a private screen's button tapped in a group gets a short answer
instead of drawing a personal screen in front of everyone. What is not a command for the bot
(chatter, other bots' commands, channel posts) matches nothing and is ignored.
"""

from __future__ import annotations

from telegram import BotCommandScopeChat, ChatMember, ChatMemberRestricted, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import callbacks
from bot.callbacks import on_tap
from bot.commands import GROUP_COMMANDS, bot_commands
from bot.context import AppContext
from bot.languages import other_language
from bot.ui import answer, button, keyboard, open_in_bot, pairs, post, show

GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP)


class GroupButtonHandler(CallbackQueryHandler[AppContext, None]):
    """A CallbackQueryHandler that only takes buttons tapped in groups."""

    def check_update(self, update: object) -> bool | object | None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None or chat.type not in GROUP_TYPES:
            return None
        return super().check_update(update)


def _is_in(member: ChatMember) -> bool:
    """Whether the bot is in the chat (a restricted member may be in it or not)."""
    if isinstance(member, ChatMemberRestricted):
        return member.is_member
    return member.status in (
        ChatMemberStatus.MEMBER,
        ChatMemberStatus.ADMINISTRATOR,
        ChatMemberStatus.OWNER,
    )


async def membership(update: Update, ctx: AppContext) -> None:
    """Added: remember the group and say once how to use the bot. Removed: forget the group."""
    change = update.my_chat_member
    if change is None or change.chat.type not in GROUP_TYPES:
        return
    chat = change.chat
    was_in, is_in = _is_in(change.old_chat_member), _is_in(change.new_chat_member)
    if is_in and not was_in:
        await ctx.store.upsert_group(chat.id, chat.title or "", now=ctx.now())
        # A new stay starts in the default language: drop a menu left from an earlier one.
        await ctx.bot.delete_my_commands(scope=BotCommandScopeChat(chat.id))
        post(update, ctx, ctx.bot.send_message(chat.id, ctx.t("group.welcome")))
    elif was_in and not is_in:
        await ctx.store.remove_group(chat.id)


async def show_methods(update: Update, ctx: AppContext) -> None:
    """/methods, and Back from a card: every method as a button."""
    entries = [
        button(f"{m.emoji} {m.button}", callbacks.GroupCard(m.id).pack())
        for m in ctx.library.methods(ctx.lang)
    ]
    await show(update, ctx, ctx.t("list.all"), keyboard(pairs(entries)))


async def card(update: Update, ctx: AppContext, data: callbacks.GroupCard) -> None:
    """The compact card, edited into the list message so the group's chat stays short."""
    rows = [
        [open_in_bot(ctx, ctx.t("btn.open_card"), data.method)],
        [button(ctx.t("btn.back"), callbacks.GROUP_LIST.pack())],
    ]
    await show(update, ctx, ctx.library.card(ctx.lang, data.method), keyboard(rows))


async def removed_method(update: Update, ctx: AppContext) -> None:
    """A card of a method removed since the list was sent: the list as it is now."""
    ctx.notify(ctx.t("stale"))
    await show_methods(update, ctx)


async def private_button(update: Update, ctx: AppContext) -> None:
    """Any other button in a group belongs to a private screen: answer it, show nothing."""
    await answer(update, ctx, ctx.t("group.private_only"))


async def group_help(update: Update, ctx: AppContext) -> None:
    await show(update, ctx, ctx.t("group.help", bot=ctx.bot.username), None)


async def switch_language(update: Update, ctx: AppContext) -> None:
    """The group's language is the admins' choice; it applies to everyone's screens there."""
    chat = update.effective_chat
    assert chat is not None
    if not await _is_admin(update, ctx):
        await show(update, ctx, ctx.t("group.admins_only"), None)
        return
    ctx.lang = other_language(ctx.lang)
    # upsert: the bot may have joined while it was offline, or before groups were stored.
    await ctx.store.upsert_group(chat.id, chat.title or "", now=ctx.now())
    await ctx.store.set_group_language(chat.id, ctx.lang)
    await ctx.bot.set_my_commands(
        bot_commands(ctx.library, ctx.lang, GROUP_COMMANDS), scope=BotCommandScopeChat(chat.id)
    )
    await show(update, ctx, ctx.t("group.language_changed"), None)


async def _is_admin(update: Update, ctx: AppContext) -> bool:
    """Asked from Telegram each time: admins change, and the command is rare."""
    chat, message, user = update.effective_chat, update.effective_message, update.effective_user
    assert chat is not None and message is not None
    if message.sender_chat is not None and message.sender_chat.id == chat.id:
        return True  # an anonymous admin writes as the group itself
    if user is None:
        return False
    member = await ctx.bot.get_chat_member(chat.id, user.id)
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def migrated(update: Update, ctx: AppContext) -> None:
    """The group became a supergroup, which has a new id: its language goes with it.

    Telegram says so in both chats (in either order); moving twice changes nothing.
    """
    message = update.effective_message
    assert message is not None
    old = message.migrate_from_chat_id or message.chat.id
    new = message.migrate_to_chat_id or message.chat.id
    await ctx.store.move_group(old, new)
    if message.chat.id != new:  # the command list is set once, on the new chat's message
        return
    group = await ctx.store.get_group(new)
    if group is not None and group.language is not None:
        await ctx.bot.set_my_commands(
            bot_commands(ctx.library, group.language, GROUP_COMMANDS),
            scope=BotCommandScopeChat(new),
        )


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    # New messages only: an edited command would post its answer a second time.
    groups = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE
    return [
        ChatMemberHandler(membership, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.MIGRATE, migrated),
        CommandHandler("methods", show_methods, filters=groups),
        CommandHandler(["start", "help"], group_help, filters=groups),
        CommandHandler("language", switch_language, filters=groups),
        on_tap(callbacks.GroupCard, card, stale=removed_method, handler=GroupButtonHandler),
        on_tap(callbacks.GROUP_LIST, show_methods, handler=GroupButtonHandler),
        GroupButtonHandler(private_button),
    ]
