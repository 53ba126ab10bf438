"""A network audit for the tests: with this folder on PYTHONPATH and S2SFLOW_NET_AUDIT naming a file,
every Python process (the flow, the Prefect server, dvc, each stage) appends one JSON line per
``socket.connect`` and ``socket.getaddrinfo`` it attempts (PEP 578 audit hooks see them all)."""

import json
import os
import sys

_LOG = os.environ.get("S2SFLOW_NET_AUDIT")


def _hook(event, args):
    if event == "socket.connect":
        sock, address = args[0], args[1]
        record = {"event": "connect", "family": int(sock.family), "address": repr(address)}
    elif event == "socket.getaddrinfo":
        record = {"event": "getaddrinfo", "host": repr(args[0])}
    else:
        return
    record.update(pid=os.getpid(), argv=" ".join(sys.argv[:3])[:200])
    with open(_LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


if _LOG:
    sys.addaudithook(_hook)
