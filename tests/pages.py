"""What a page in the test browser did: requests, WebSockets, the messages it sent, its errors."""

import json


class PageWatch:
    """Records a Playwright page's requests, WebSockets and sent messages, console and page errors."""

    def __init__(self, page):
        self.page = page
        self.requests = []  # (url, headers)
        self.websockets = []
        self.sent = []
        self.console_errors = []
        page.on("request", lambda request: self.requests.append((request.url, request.headers)))
        page.on("websocket", self.opened)
        page.on(
            "console", lambda message: message.type == "error" and self.console_errors.append(message.text)
        )
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def opened(self, websocket):
        self.websockets.append(websocket)
        websocket.on("framesent", lambda payload: self.sent.append(json.loads(payload)))

    @property
    def errors(self):
        """Script errors and CSP violations; a refused connection while the server is down is expected."""
        return [text for text in self.console_errors if not text.startswith("WebSocket connection to")]
