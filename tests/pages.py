"""What a page in the test browser did: requests, WebSockets, the messages it sent, its errors.

And signing a page in to the admin.
"""

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


def sign_in_to_admin(page, server_url, username, password, next_path, timeout):
    """Sign `page` in to the admin at `server_url` as staff, and wait until it is sent on to `next_path`."""
    page.goto(f"{server_url}/admin/login/?next={next_path}", timeout=timeout)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server_url}{next_path}", timeout=timeout)
