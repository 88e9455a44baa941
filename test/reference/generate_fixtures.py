"""Regenerate every fixture under test/fixtures/ (run: /usr/bin/python3 test/reference/generate_fixtures.py)."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import fixtures_models  # noqa: E402
import fixtures_ops  # noqa: E402
import fixtures_policy  # noqa: E402
import fixtures_rtc  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")


def main():
    torch.set_num_threads(1)
    t0 = time.time()
    fixtures_ops.generate(os.path.join(FIXTURES, "ops"))
    print(f"ops fixtures written in {time.time() - t0:.1f}s")
    fixtures_models.generate(FIXTURES)
    print(f"model fixtures written in {time.time() - t0:.1f}s")
    fixtures_policy.generate(FIXTURES)  # reads tiny_delta, so after the models
    fixtures_rtc.generate(FIXTURES)  # reads tiny_equal and tiny_fewer
    print(f"all fixtures written in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
