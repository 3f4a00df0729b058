"""Subscribe to Cairn's milestone events with confluent-kafka (docs/subscribers.md).

CAIRN_BOOTSTRAP=host:port CAIRN_GROUP=my-team python docs/examples/subscriber.py
"""

import json
import os
from pathlib import Path

from confluent_kafka import Consumer
from jsonschema import Draft202012Validator

schemas = Path(os.environ.get("CAIRN_SCHEMAS", "shared/schemas/jsonschema"))
validators = {
    e["event_type"]: Draft202012Validator(json.loads((schemas / e["file"]).read_text()))
    for e in json.loads((schemas / "index.json").read_text())["events"]
}
consumer = Consumer(
    {
        "bootstrap.servers": os.environ["CAIRN_BOOTSTRAP"],
        "group.id": os.environ["CAIRN_GROUP"],  # your own group: your ACLs allow no other
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,  # commit after handling: at least once
        **json.loads(os.environ.get("CAIRN_KAFKA_CONFIG", "{}")),  # SASL_SSL etc.
    }
)
topics = os.environ.get("CAIRN_TOPICS", "cairn.contracts.v1,cairn.payments.v1")
consumer.subscribe(topics.split(","))
seen: set[str] = set()  # ce_id of every event handled: keep them in your database
versions: dict[str, int] = {}  # milestone id -> newest version applied
limit, handled = int(os.environ.get("CAIRN_STOP_AFTER", "0")), 0
while not limit or handled < limit:
    msg = consumer.poll(1.0)
    if msg is None or msg.error():
        continue
    handled += 1
    headers = {k: v.decode() for k, v in msg.headers() or []}
    ce_id, ce_type, event = headers["ce_id"], headers["ce_type"], json.loads(msg.value())
    validator = validators.get(ce_type)
    errors = [e.message for e in validator.iter_errors(event)] if validator else []
    milestone, version = event.get("milestone_id"), event.get("version")
    if validator is None:
        outcome = "unknown"  # a type newer than your copy of the schemas: skip it
    elif errors:
        outcome = f"invalid ({errors[0]})"
    elif ce_id in seen:
        outcome = "duplicate"  # redelivered or replayed: handled already
    elif milestone and version and version < versions.get(milestone, 0):
        outcome = "stale"  # older than what you applied: keep the newer state
    else:
        outcome = "ok"  # ...your handling here, in one transaction with `seen`...
        seen.add(ce_id)
        if milestone and version:
            versions[milestone] = version
    print(ce_id, ce_type, outcome, flush=True)
    consumer.commit(msg, asynchronous=False)
consumer.close()
