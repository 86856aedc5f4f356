"""A keep-alive REST Proxy client: aiohttp with a single pooled connection,
sending a bad request (its body streamed a moment after its headers) and
then a good one, many times over. A server that
answers early and closes the connection without `Connection: close` makes
this client write the good request into a dead socket and lose it.

Usage: keep_alive_client.py BASE_URL TOPIC ROUNDS OUT_JSON
Writes, per kind of bad request, the status it got and the outcome of each
good request that followed it (status, or the client's error)."""

import asyncio
import json
import sys

import aiohttp

base, topic, rounds, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
JSON_V2 = "application/vnd.kafka.json.v2+json"
good_body = lambda i: json.dumps({"records": [{"value": {"round": i}}]})

# Each sends a body the server has no reason to read.
BAD = {
    "unknown_route": ("POST", f"/topics/{topic}/no/such/route", JSON_V2, good_body(-1)),
    "unsupported_media_type": ("POST", f"/topics/{topic}", "text/plain", "x" * 2000),
    "method_not_allowed": ("PUT", f"/topics/{topic}", JSON_V2, good_body(-1)),
    "body_on_a_get": ("GET", f"/topics/{topic}/partitions", JSON_V2, "y" * 2000),
}


async def late(body):
    """The body as a stream that starts after a pause, as a client uploading
    from elsewhere sends it: the server can answer before it arrives."""
    await asyncio.sleep(0.05)
    yield body.encode()


async def main():
    report = {}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        sequence = 0
        for name, (method, path, ctype, body) in BAD.items():
            statuses, follow_ups = [], []
            for _ in range(rounds):
                async with session.request(method, base + path, data=late(body), headers={"Content-Type": ctype}) as r:
                    await r.read()
                    statuses.append(r.status)
                try:
                    async with session.post(f"{base}/topics/{topic}", data=good_body(sequence), headers={"Content-Type": JSON_V2}) as r:
                        answer = await r.json(content_type=None)
                        follow_ups.append({"round": sequence, "status": r.status, "offsets": answer.get("offsets")})
                except aiohttp.ClientError as e:
                    follow_ups.append({"round": sequence, "error": f"{type(e).__name__}: {e}"})
                sequence += 1
            report[name] = {"statuses": statuses, "follow_ups": follow_ups}
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(report, out)


asyncio.run(main())
