"""Picture cards: method cards, weekly tips and quiz results drawn as PNGs to share anywhere.

build (what each card says, from the content library) → model (the card as data, its hash) →
draw (layout in boxes, painting, the QR code; text: fonts, Raqm shaping, line breaking) →
service (a render process, the disk cache, uploads and file_ids). check is the content check's
part. The render process imports only draw and what it needs.
"""
