"""The html-patch functions: splitting into top-level blocks, diffing, applying, checksums."""

import hashlib
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_app.html_patch import (
    PatchError,
    apply_patch,
    checksum,
    diff_blocks,
    split_blocks,
    utf16_lengths,
)

# Top-level blocks as nh3-sanitised mammoth output has them, with awkward text on purpose.
TEXTS = ["plain", "a &amp; b", "x < y > z", "naïve ünïcode", "emoji 😀 𝄞", "", "  spaced  ", "line\nbreak"]


def random_block(rng):
    text = rng.choice(TEXTS) + str(rng.randrange(1000))
    return rng.choice(
        [
            f"<p>{text}</p>",
            f"<p><strong>{text}</strong><br>{text}</p>",
            f'<h2 id="h-{rng.randrange(99)}">{text}</h2>',
            f"<table><tbody><tr><td><p>{text}</p></td><td>{text}</td></tr></tbody></table>",
            f"<ul><li>{text}<ul><li>{text}</li></ul></li><li>{text}</li></ul>",
            f"<ol><li>{text}</li></ol>",
            f'<p><a href="https://example.com/?a=1&amp;b=%3E">{text}</a>'
            '<img src="data:image/png;base64,AAAA" alt="a > b"></p>',
            "<hr>",
            f"<blockquote><p>{text}</p></blockquote>",
            "\n",
        ]
    )


def random_edit(rng, blocks):
    blocks = list(blocks)
    for _ in range(rng.choice([1, 1, 1, 2, 5])):
        kind = rng.choice(["insert", "delete", "replace", "move"])
        at = rng.randrange(len(blocks) + 1)
        if kind == "insert" or not blocks:
            blocks[at:at] = [random_block(rng) for _ in range(rng.randrange(1, 4))]
        elif kind == "delete":
            del blocks[at : at + rng.randrange(1, 3)]
        elif kind == "replace":
            blocks[min(at, len(blocks) - 1)] = random_block(rng)
        else:
            blocks.insert(at, blocks.pop(rng.randrange(len(blocks))))
    return blocks


def patched(old_html, new_html):
    """The HTML a client rebuilds from old_html and the patch the server would send for new_html."""
    ops = diff_blocks(split_blocks(old_html), split_blocks(new_html))
    return "".join(apply_patch(split_blocks(old_html), ops)), ops


def test_blocks_are_the_top_level_elements_and_join_back_exactly():
    html = (
        '<h1 id="t">Title</h1>\n<p>One<br>two</p><table><tr><td><p>cell</p></td></tr></table>'
        '<ul><li>a<ul><li>b</li></ul></li></ul>tail text<img src="x" alt="1 > 0"><hr/><p>end</p>'
    )
    blocks = split_blocks(html)
    assert "".join(blocks) == html
    assert blocks == [
        '<h1 id="t">Title</h1>\n',
        "<p>One<br>two</p>",
        "<table><tr><td><p>cell</p></td></tr></table>",
        "<ul><li>a<ul><li>b</li></ul></li></ul>tail text",
        '<img src="x" alt="1 > 0">',
        "<hr/>",
        "<p>end</p>",
    ]


@pytest.mark.parametrize(
    "html",
    [
        "",
        "just text",
        "text <p>then a paragraph</p>",
        "<p>unclosed",
        "</p>stray end<p>x</p>",
        "<!-- c --><p>a</p>",
    ],
)
def test_splitting_odd_html_loses_nothing(html):
    assert "".join(split_blocks(html)) == html


def test_one_paragraph_edit_is_one_replace():
    paragraphs = [f"<p>Paragraph {n}</p>" for n in range(500)]
    edited = list(paragraphs)
    edited[250] = "<p>Paragraph 250, edited</p>"
    ops = diff_blocks(paragraphs, edited)
    assert ops == [["keep", 250], ["replace", 1, ["<p>Paragraph 250, edited</p>"]], ["keep", 249]]
    assert apply_patch(paragraphs, ops) == edited


def test_long_random_sequence_of_edits_reproduces_every_version():
    rng = random.Random(20261126)
    blocks = [random_block(rng) for _ in range(40)]
    html = "".join(blocks)
    for _ in range(400):
        blocks = random_edit(rng, blocks)
        new_html = "".join(blocks)
        rebuilt, ops = patched(html, new_html)
        assert rebuilt == new_html
        assert checksum(rebuilt) == hashlib.sha256(new_html.encode()).hexdigest()
        html = new_html


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(TEXTS + ["<p>a</p>", "<p>b</p>", "<table><tr><td>c</td></tr></table>"]), max_size=30
    ),
    st.lists(st.sampled_from(TEXTS + ["<p>a</p>", "<p>b</p>", "<ul><li>d</li></ul>", "<br>"]), max_size=30),
)
def test_any_pair_of_documents_patches_exactly(old_parts, new_parts):
    old_html, new_html = "".join(old_parts), "".join(new_parts)
    assert patched(old_html, new_html)[0] == new_html


@pytest.mark.parametrize(
    "ops",
    [
        [["keep", 2]],
        [["keep", 4]],
        [["delete", -1], ["keep", 4]],
        [["insert", "<p>x</p>"], ["keep", 3]],
        [["replace", 1], ["keep", 2]],
        [["move", 1], ["keep", 3]],
        ["keep", 3],
        [["keep", True], ["keep", 2]],
    ],
)
def test_a_patch_that_does_not_fit_is_refused(ops):
    with pytest.raises(PatchError):
        apply_patch(["<p>1</p>", "<p>2</p>", "<p>3</p>"], ops)


def test_lengths_are_counted_in_utf16_units_as_javascript_does():
    assert utf16_lengths(["<p>a</p>", "<p>😀</p>", "é"]) == [8, 9, 1]


# Cost: the diff is about linear in the blocks, whatever they hold

SWAPPED_PAIRS = 25_000


def timed_diff(old, new, **budget):
    started = time.perf_counter()
    ops = diff_blocks(old, new, **budget)
    return ops, time.perf_counter() - started


def test_swapped_pairs_are_diffed_in_moments_and_the_patch_is_exact():
    # difflib took 97 s over these, holding the GIL of the whole server process.
    old = ["<p>a</p>", "<p>b</p>"] * SWAPPED_PAIRS
    new = ["<p>b</p>", "<p>a</p>"] * SWAPPED_PAIRS
    ops, seconds = timed_diff(old, new)
    assert seconds < 5
    assert apply_patch(old, ops) == new


def repeated_letters(rng, count):
    return [rng.choice(["<p>a</p>", "<p>b</p>", "<p>c</p>"]) for _ in range(count)]


@pytest.mark.parametrize(
    "shape",
    ["reversed", "shuffled", "three letters at random", "each block twice, reversed", "sections of repeats"],
)
def test_long_documents_of_any_shape_are_diffed_in_moments_and_exactly(shape):
    rng = random.Random(shape)
    count = 50_000
    old = [f"<p>Paragraph {n}</p>" for n in range(count)]
    if shape == "reversed":
        new = old[::-1]
    elif shape == "shuffled":
        new = rng.sample(old, count)
    elif shape == "three letters at random":
        old, new = repeated_letters(rng, count), repeated_letters(rng, count)
    elif shape == "each block twice, reversed":
        old = [f"<p>{n // 2}</p>" for n in range(count)]
        new = old[::-1]
    else:
        # Unique headings every hundred blocks, repeated paragraphs between them.
        old, new = [], []
        for section in range(count // 100):
            old += [f"<h2>{section}</h2>", *repeated_letters(rng, 99)]
            new += [f"<h2>{section}</h2>", *repeated_letters(rng, 99)]
    ops, seconds = timed_diff(old, new)
    assert seconds < 5
    assert apply_patch(old, ops) == new


def test_distant_edits_in_a_long_document_give_a_small_patch():
    paragraphs = [f"<p>Paragraph {n}</p>" for n in range(50_000)]
    edited = list(paragraphs)
    edited[100] = "<p>Edited near the start</p>"
    del edited[25_000]
    edited.insert(49_000, "<p>Inserted near the end</p>")
    ops, seconds = timed_diff(paragraphs, edited)
    assert seconds < 5
    assert ops == [
        ["keep", 100],
        ["replace", 1, ["<p>Edited near the start</p>"]],
        ["keep", 24_899],
        ["delete", 1],
        ["keep", 24_000],
        ["insert", ["<p>Inserted near the end</p>"]],
        ["keep", 999],
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["<p>a</p>", "<p>b</p>", "<p>c</p>", "<hr>", "x"]), max_size=40),
    st.lists(st.sampled_from(["<p>a</p>", "<p>b</p>", "<p>c</p>", "<br>", "x"]), max_size=40),
    st.integers(min_value=0, max_value=400),
)
def test_a_patch_is_exact_however_small_the_budget(old, new, steps):
    # What the budget does not reach is replaced whole: a larger patch, never a wrong one.
    assert apply_patch(old, diff_blocks(old, new, steps=steps)) == new


def test_a_budget_too_small_for_the_middle_replaces_it_whole():
    old = ["<h1>t</h1>", "<p>a</p>", "<p>b</p>", "<p>c</p>", "<p>end</p>"]
    new = ["<h1>t</h1>", "<p>c</p>", "<p>b</p>", "<p>a</p>", "<p>end</p>"]
    assert diff_blocks(old, new, steps=0) == [["keep", 1], ["replace", 3, new[1:4]], ["keep", 1]]
    # With the default budget one of the middle blocks is kept as well.
    ops = diff_blocks(old, new)
    assert apply_patch(old, ops) == new
    assert sum(op[1] for op in ops if op[0] == "keep") == 3
