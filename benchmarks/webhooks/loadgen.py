"""Load generator: signed Standard Webhooks deliveries (or bare posts) over keep-alive HTTP.

Run by ``run.py`` as a separate process so that client and server do not share an interpreter.
All bodies and signatures are made before the clock starts; the seed fixes the payloads.
Only 202 and 200 answers count as accepted (``accepted_per_second``); every other status, or
no answer (status 0), is a failure. ``--answers FILE`` records the status each delivery id got,
so that ``run.py`` can compare the ids accepted with the ids stored.

    python loadgen.py --url http://127.0.0.1:8080/webhooks/reviews --count 2000 \
        --concurrency 16 --mode signed --seed 7 --secret whsec_...
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import threading
import time
import uuid
from urllib.parse import urlsplit

from coachbridge_webhooks.standard_webhooks import signed_headers

ACCEPTED = (200, 202)


def make_requests(
    count: int, mode: str, seed: int, secret: str, people: int
) -> list[tuple[bytes, dict[str, str]]]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        payload = {
            "type": "review.completed",
            "timestamp": "2026-11-20T10:00:00Z",
            "data": {
                "cycle_id": f"bench-{seed}-{n}",
                "employee_id": f"E{rng.randint(1, people)}",
                "rating": rng.randint(1, 5),
                "rating_scale_min": 1,
                "rating_scale_max": 5,
                "completed_at": "2026-11-20T09:55:00Z",
            },
        }
        body = json.dumps(payload).encode()
        if mode == "signed":
            headers = signed_headers(secret, f"msg_{uuid.UUID(int=rng.getrandbits(128)).hex}", body)
        else:
            headers = {"content-type": "application/json"}
        out.append((body, headers))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mode", choices=["signed", "bare"], default="signed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--secret", default="")
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument(
        "--answers",
        help="write each delivery's id and the status answered (tab-separated) to this file",
    )
    args = parser.parse_args()

    parts = urlsplit(args.url)
    requests_ = make_requests(args.count, args.mode, args.seed, args.secret, args.people)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    answers: list[int] = [0] * len(requests_)  # the status each request got; 0: no answer
    lock = threading.Lock()
    cursor = iter(range(len(requests_)))

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        mine: list[float] = []
        codes: dict[int, int] = {}
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            body, headers = requests_[index]
            start = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                status = 0
            mine.append(time.perf_counter() - start)
            codes[status] = codes.get(status, 0) + 1
            answers[index] = status
        conn.close()
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    if args.answers:
        with open(args.answers, "w", encoding="utf-8") as out:
            for (_, headers), status in zip(requests_, answers, strict=True):
                out.write(f"{headers.get('webhook-id', '')}\t{status}\n")
    # Only 202 (stored) and 200 (a repeat of a stored delivery) mean the delivery is safe with
    # the server; anything else, a missing answer included, is a failure the sender must retry.
    accepted = sum(n for code, n in statuses.items() if code in ACCEPTED)
    print(
        json.dumps(
            {
                "mode": args.mode,
                "count": args.count,
                "concurrency": args.concurrency,
                "seconds": round(elapsed, 3),
                "accepted": accepted,
                "failed": args.count - accepted,
                "accepted_per_second": round(accepted / elapsed, 1),
                "p50_ms": round(q[49] * 1000, 2),
                "p99_ms": round(q[98] * 1000, 2),
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
            }
        )
    )


if __name__ == "__main__":
    main()
