"""The outbox: one durable delivery queue for everything the app sends on its own.

Reminders and campaigns call `enqueue()`; the worker (`OutboxWorker`, started in
the app's lifespan) claims due rows, sends them through the `Sender` registered
for their channel, and marks them. See docs/outbox.md.
"""
