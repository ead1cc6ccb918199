"""Edit in Word as the field's editor plugin uses it: launch links asked for with a key, their .docx."""

import io
import re
import zipfile
from html import unescape
from urllib.parse import urlsplit

from rest_framework.test import APIClient

GENERATE = "/edit-in-word/generate-word-launch-link"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
WORD_URL_PREFIX = "ms-word:ofe|u|"
# What the plugin posts: the editor's content inside a whole document (plugin.min.js).
PLUGIN_PAGE = """
        <html>
          <head><meta charset="utf-8"></head>
          <body>
            <div class="tinymce-content" dir="rtl">
              {content}
            </div>
          </body>
        </html>"""


def post_launch_link(secret, html=None, body=None, client=None, **headers):
    """POST the plugin's request: header Token, JSON {"Html": …} (or `body` as given)."""
    client = client or APIClient()
    if secret is not None:
        headers["HTTP_TOKEN"] = secret
    payload = body if body is not None else {"Html": PLUGIN_PAGE.format(content=html or "<p>Hello</p>")}
    return client.post(GENERATE, payload, format="json", **headers)


def launch_path(answer):
    """The path of the .docx a launch link answer's wordUrl names, checked to lie under the public URL."""
    word_url = answer["wordUrl"]
    assert word_url.startswith(WORD_URL_PREFIX), word_url
    url = word_url.removeprefix(WORD_URL_PREFIX)
    assert url.startswith("http://127.0.0.1:8000/edit-in-word/files/"), url
    return urlsplit(url).path


def custom_properties(docx):
    """The custom document properties of a .docx: {name: text}."""
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        xml = archive.read("docProps/custom.xml").decode()
    return {
        unescape(name): unescape(value)
        for name, value in re.findall(
            r'<property [^>]*name="([^"]*)"[^>]*>\s*<vt:lpwstr>([^<]*)</vt:lpwstr>', xml
        )
    }
