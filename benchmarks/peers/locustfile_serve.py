"""The locust side of benchmarks/serve_load.py: what legitimate and hostile clients send.

Run by the driver as `locust -f benchmarks/peers/locustfile_serve.py ...` in a process of its own
(the driver never imports locust: importing it monkey-patches the standard library with gevent).
Reads the payloads the driver wrote into $SERVE_LOAD_DIR (one JSON body per line) and the API key
from $SKETCHREC_API_KEY; the user classes are chosen on locust's command line.
"""

import json, os, random, uuid
from collections import Counter
from locust import FastHttpUser, constant, events, task

DIR = os.environ["SERVE_LOAD_DIR"]
KEYED = {"X-API-Key": os.environ["SKETCHREC_API_KEY"], "Content-Type": "application/json"}
NO_KEY = {"Content-Type": "application/json"}
STATUS = Counter()


def bodies(name):
    with open(os.path.join(DIR, name), "rb") as fh:
        return fh.read().split(b"\n")


@events.test_stop.add_listener
def dump(environment, **kwargs):
    with open(os.path.join(DIR, "status.json"), "w") as fh:
        json.dump(STATUS, fh)


class Scoring(FastHttpUser):
    """Real test prefixes, one session or one batch per request; anything but 200 is an error."""
    wait_time = constant(0)

    def on_start(self):
        self.bodies = bodies(os.environ["SERVE_LOAD_BODIES"])
        self.i = random.randrange(len(self.bodies))

    @task
    def recommend(self):
        self.i = (self.i + 1) % len(self.bodies)
        with self.client.post("/recommend", data=self.bodies[self.i], headers=KEYED, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")


# (weight, what, method, path ({} -> a random hex string), body file, X-API-Key: the key, none, or this)
HOSTILE = [
    (3, "body over the limit", "POST", "/recommend", "hostile_oversized", KEYED),
    (3, "body over the limit, no key", "POST", "/recommend", "hostile_oversized", NO_KEY),
    (3, "random path", "GET", "/{}/{}", None, KEYED),
    (2, "random path, no key", "GET", "/{}", None, NO_KEY),
    (2, "wrong key", "POST", "/recommend", "hostile_single", {**KEYED, "X-API-Key": "wrong"}),
    (1, "non-ASCII key", "POST", "/recommend", "hostile_single", {**KEYED, "X-API-Key": "cl\xe9"}),
    (2, "k = 10^6", "POST", "/recommend", "hostile_huge_k", KEYED),
    (1, "k = NaN", "POST", "/recommend", "hostile_nan", KEYED),
    (1, "1,000 sessions x k=1,000", "POST", "/recommend", "hostile_work", KEYED),
    (1, "largest batch allowed", "POST", "/recommend", "hostile_largest", KEYED),
    (1, "1,000 long unknown ids", "POST", "/recommend", "hostile_unknown", KEYED),
    (1, "largest /profile batch", "POST", "/profile", "hostile_profile", KEYED),
]


class Hostile(FastHttpUser):
    """What careless and hostile clients send; an error is a 5xx other than 503 (busy)."""
    wait_time = constant(0)

    def on_start(self):
        self.body = {name: bodies(name)[0] for name in os.listdir(DIR) if name.startswith("hostile_")}

    @task
    def send(self):
        _, kind, method, path, body, headers = random.choices(HOSTILE, weights=[h[0] for h in HOSTILE])[0]
        path = path.format(uuid.uuid4().hex, uuid.uuid4().hex)
        with self.client.request(method, path, data=self.body.get(body), headers=headers, name=kind,
                                 catch_response=True) as r:
            STATUS[f"{kind}|{r.status_code}"] += 1
            if r.status_code >= 500 and r.status_code != 503:
                r.failure(f"status {r.status_code}")
            else:
                r.success()


class Probe(FastHttpUser):
    """/health every 100 ms: does the service stay responsive?"""
    wait_time = constant(0.1)

    @task
    def health(self):
        self.client.get("/health", name="/health (probe)")
