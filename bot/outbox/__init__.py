"""What goes out: replies posted by handlers (replies), and the weekly tips and broadcasts
(dispatcher, with its schedule maths in schedule and what a send error means in delivery).

Only the replies outbox is imported here: the dispatcher reaches `bot.context`, which needs
`Outbox`, so it is imported from `bot.outbox.dispatcher` by the code that builds it.
"""

from bot.outbox.replies import Outbox

__all__ = ["Outbox"]
