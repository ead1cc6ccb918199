"""Print this machine's address on its network, for links that other machines open."""

import socket

# Connecting a UDP socket sends nothing; it only picks the interface a packet would leave by.
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
        print(probe.getsockname()[0])
    except OSError:  # no network at all: this machine is the only one that can open the links
        print("127.0.0.1")
