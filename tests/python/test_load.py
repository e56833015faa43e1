"""The load test of bench/load_test.py at a bounded duration (issue 8.6): 200
concurrent clients on loopback, batch queries checked against the node's own
answers and streaming queries checked exactly-once against a batch query, while
blocks arrive. No errors, exact results, and the server's resident memory flat
after warm-up (a generous bound, not a timing). SLUICE_LOAD_SECONDS changes the
duration (default 60)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import load_test  # noqa: E402


def test_200_clients_mixed_batch_and_streaming(tmp_path):
    figures = load_test.run(clients=200, duration=float(os.environ.get("SLUICE_LOAD_SECONDS", 60)),
                            block_interval=0.5, tmp=tmp_path)
    print("\n" + json.dumps({k: v for k, v in figures.items() if k != "rss_samples"}))
    assert figures["server_alive"]
    assert figures["errors"] == 0, figures["error_samples"]
    assert figures["batch_queries"] > 0 and figures["microbatches"] > 0
    assert figures["stream_resumes"] > 0
    assert figures["blocks_during_run"] > 0
    assert load_test.rss_flat(figures), figures["rss_samples"]
