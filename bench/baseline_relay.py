"""The baseline for bench/fanout.py: the least a relay can do, written with `websockets` alone.

It speaks just enough of collab's version 2 protocol for the benchmark's clients: a `word`
socket's `update-ooxml` (HTML, no conversion, no database) becomes the current document,
encoded once and broadcast to every socket; a new socket gets `init` and the current
document. No authentication, no storage, no limits: what is left is the cost of moving the
bytes, which is what collab's fan-out is compared with.

    python bench/baseline_relay.py --port 8765
"""

import argparse
import asyncio
import json
import resource

from websockets.asyncio.server import broadcast, serve


class Relay:
    def __init__(self):
        self.sockets = set()
        self.version = 0
        self.frame = self.document_frame("")

    def document_frame(self, html):
        message = {
            "Origin": "server",
            "SessionId": "baseline",
            "Action": "get-html",
            "PayloadType": "html",
            "Content": html,
            "Success": True,
            "Version": self.version,
        }
        return json.dumps(message)

    async def serve_socket(self, websocket):
        try:
            async for text in websocket:
                message = json.loads(text)
                if "Token" in message:
                    self.sockets.add(websocket)
                    await websocket.send(
                        json.dumps({"Action": "init", "Success": True, "Version": self.version})
                    )
                    if message.get("Origin") == "client" and message.get("LastVersion") != self.version:
                        await websocket.send(self.frame)
                if message.get("Action") == "update-ooxml":
                    self.version += 1
                    self.frame = self.document_frame(message["Content"])
                    broadcast(self.sockets, self.frame)
        finally:
            self.sockets.discard(websocket)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    relay = Relay()
    async with serve(
        relay.serve_socket,
        "127.0.0.1",
        args.port,
        max_size=None,
        compression=None,
        ping_interval=None,
        backlog=4096,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
