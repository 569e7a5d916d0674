"""Reading set elements out of ``nft -j list table`` output: the shapes nft 1.0 prints."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.kernel.nftables import SetElement, read_set_elements

# Captured from `nft -j list table inet t` (nftables 1.0.6) after adding the elements named.
LISTING: list[dict[str, Any]] = [
    {"table": {"family": "inet", "name": "t", "handle": 1}},
    {
        "set": {
            "family": "inet",
            "name": "s4",
            "table": "t",
            "type": "ipv4_addr",
            "flags": ["timeout"],
            "elem": [
                {"elem": {"val": "203.0.113.5", "timeout": 30, "expires": 29}},
                "203.0.113.6",
            ],
        }
    },
    {"set": {"family": "inet", "name": "empty", "table": "t", "type": "ipv4_addr"}},
    {
        "set": {
            "family": "inet",
            "name": "iv",
            "table": "t",
            "type": "ipv4_addr",
            "flags": ["interval"],
            "elem": [
                {"range": ["198.18.0.1", "198.18.0.9"]},
                "198.18.1.1",
                {"prefix": {"addr": "203.0.113.0", "len": 28}},
            ],
        }
    },
    {
        "set": {
            "family": "inet",
            "name": "c",
            "table": "t",
            "type": ["ipv4_addr", "inet_service"],
            "flags": ["timeout"],
            "elem": [
                {
                    "elem": {
                        "val": {"concat": ["203.0.113.5", 80]},
                        "timeout": 3600,
                        "expires": 3599,
                    }
                },
                {"concat": ["203.0.113.6", 443]},
            ],
        }
    },
    {
        "set": {
            "family": "inet",
            "name": "d",
            "table": "t",
            "type": "ipv4_addr",
            "flags": ["timeout"],
            "timeout": 60,
            "elem": [
                {"elem": {"val": "203.0.113.7", "expires": 59}},
                {"elem": {"val": "203.0.113.8", "timeout": 10, "expires": 9, "comment": "x"}},
            ],
        }
    },
    {
        "set": {
            "family": "inet",
            "name": "v6",
            "table": "t",
            "type": "ipv6_addr",
            "flags": ["interval", "timeout"],
            "elem": [
                {
                    "elem": {
                        "val": {"prefix": {"addr": "2001:db8::", "len": 64}},
                        "timeout": 20,
                        "expires": 19,
                    }
                },
                "2001:db8:1::1",
            ],
        }
    },
    {
        "set": {
            "family": "inet",
            "name": "ctr",
            "table": "t",
            "type": "ipv4_addr",
            "elem": [{"elem": {"val": "203.0.113.10", "counter": {"packets": 0, "bytes": 0}}}],
            "stmt": [{"counter": None}],
        }
    },
    {
        "map": {
            "family": "inet",
            "name": "m",
            "table": "t",
            "type": "ipv4_addr",
            "map": "verdict",
            "flags": ["interval"],
            "elem": [[{"prefix": {"addr": "203.0.113.0", "len": 24}}, {"accept": None}]],
        }
    },
]

E = SetElement


@pytest.mark.parametrize(
    ("name", "elements"),
    [
        ("s4", (E("203.0.113.5", 30.0, 29.0), E("203.0.113.6"))),  # with and without expiry
        ("empty", ()),
        ("iv", (E("198.18.0.1-198.18.0.9"), E("198.18.1.1"), E("203.0.113.0/28"))),
        ("c", (E("203.0.113.5 . 80", 3600.0, 3599.0), E("203.0.113.6 . 443"))),
        ("d", (E("203.0.113.7", None, 59.0), E("203.0.113.8", 10.0, 9.0))),  # set's timeout
        ("v6", (E("2001:db8::/64", 20.0, 19.0), E("2001:db8:1::1"))),
        ("ctr", (E("203.0.113.10"),)),  # a counter, no timeout: never expires
    ],
)
def test_every_shape_nft_lists(name: str, elements: tuple[SetElement, ...]) -> None:
    assert read_set_elements(LISTING)[name] == elements


def test_maps_and_other_objects_are_not_sets() -> None:
    assert set(read_set_elements(LISTING)) == {"s4", "empty", "iv", "c", "d", "v6", "ctr"}


@pytest.mark.parametrize(
    "odd",
    [
        None,
        True,
        {"elem": {"val": None}},
        {"elem": "203.0.113.1"},
        {"prefix": {"addr": "203.0.113.0"}},
        {"range": ["203.0.113.1"]},
        {"concat": []},
        {"concat": ["203.0.113.1", None]},
        ["203.0.113.1", "accept"],
    ],
)
def test_unknown_element_shapes_are_left_out(odd: Any) -> None:
    listing = [{"set": {"name": "s", "elem": [odd, "203.0.113.1"]}}]
    assert read_set_elements(listing) == {"s": (E("203.0.113.1"),)}


def test_negative_or_odd_times_are_no_times() -> None:
    listing = [
        {"set": {"name": "s", "elem": [{"elem": {"val": "a", "timeout": -1, "expires": "9"}}]}}
    ]
    assert read_set_elements(listing) == {"s": (E("a"),)}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.lists(JSON, max_size=4))
def test_any_listing_reads_without_error(items: list[Any]) -> None:
    out = read_set_elements(items)
    assert all(isinstance(e, SetElement) for elements in out.values() for e in elements)


@given(st.lists(st.dictionaries(st.sampled_from(["name", "elem"]), JSON, max_size=2), max_size=4))
def test_any_set_body_reads_without_error(bodies: list[dict[str, Any]]) -> None:
    read_set_elements([{"set": b} for b in bodies])
