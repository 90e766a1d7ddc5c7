"""Alice sends bob 1,000 messages. Restart the broker while it runs: none is lost or doubled."""
import asyncio
import os

from mqim_client import Client, MessageEvent

API, BROKER = os.environ["MQIM_API"], os.environ["MQIM_BROKER"]  # http://…:8000, mqtt://…:1883


async def main() -> None:
    alice, bob = Client(API, broker=BROKER), Client(API, broker=BROKER)
    await alice.register("alice", "pass-word-1")
    await bob.register("bob", "pass-word-1")
    thread_id = await alice.create_thread("group", [bob.user_id])
    await alice.connect()
    await bob.connect()
    sent = [f"message {i}" for i in range(1000)]
    for i, body in enumerate(sent):
        result = await alice.send(thread_id, body)  # retried until the server confirms it
        if i % 100 == 99:
            print(f"sent {i + 1}, seq {result.seq}", flush=True)
    received: list[str] = []
    async with asyncio.timeout(60):
        async for event in bob.events():  # each message once, in seq order
            if isinstance(event, MessageEvent):
                received.append(event.body or "")
                if len(received) == len(sent):
                    break
    print(f"thread {thread_id}: bob received {len(received)}, all once and in order: "
          f"{received == sent}, {bob.stats.caught_up} fetched after reconnecting")
    await alice.close()
    await bob.close()


asyncio.run(main())
