"""A third-party client of the REST Proxy API, written the way the original
user_post_emulation.py talks to it: `requests`, one record per POST, the
Kafka JSON v2 content type, datetimes serialised with `default=str`.

Usage: rest_proxy_client.py BASE_URL UID ROUNDS OUT_JSON
Writes what it sent and what it got back, for the Rust test to check
against the broker."""

import datetime
import json
import sys

import requests

base, uid, rounds, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = {"Content-Type": "application/vnd.kafka.json.v2+json"}
session = requests.Session()
sent, answers = [], []

for i in range(rounds):
    rows = {
        "pin": {
            "index": i, "unique_id": f"00000000-0000-4000-8000-{i:012d}", "title": "Find the best global talent.",
            "description": "No description available", "poster_name": "Fiverr", "follower_count": "565k",
            "tag_list": "Hand Tattoos,Dope Tattoos", "is_image_or_video": "image",
            "image_src": "https://i.pinimg.com/originals/f9/08/67/f908679c6fd45aed6ab23b482728fa83.jpg",
            "downloaded": 1, "save_location": "Local save in /data/tattoos", "category": "tattoos",
        },
        "geo": {
            "ind": i, "timestamp": datetime.datetime(2019, 4, 7, 22, 11, 2), "latitude": -12.1295,
            "longitude": -29.9199, "country": "Afghanistan",
        },
        "user": {
            "ind": i, "first_name": "Amber", "last_name": "Chen", "age": 22,
            "date_joined": datetime.datetime(2015, 12, 30, 5, 21, 14),
        },
    }
    for kind, row in rows.items():
        payload = json.dumps({"records": [{"value": row}]}, default=str)
        response = session.request("POST", f"{base}/topics/{uid}.{kind}", headers=headers, data=payload)
        sent.append({"topic": f"{uid}.{kind}", "value": json.loads(payload)["records"][0]["value"]})
        answers.append({"status": response.status_code, "content_type": response.headers.get("Content-Type"), "body": response.json()})

# The read endpoints and an error, as a client library would see them.
topics = session.get(f"{base}/topics")
missing = session.post(f"{base}/topics/{uid}.nope", headers=headers, data=json.dumps({"records": [{"value": {"a": 1}}]}))
wrong_type = session.post(f"{base}/topics/{uid}.pin", headers={"Content-Type": "text/plain"}, data="hello")

with open(out_path, "w", encoding="utf-8") as out:
    json.dump(
        {
            "sent": sent,
            "answers": answers,
            "topics": {"status": topics.status_code, "body": topics.json()},
            "missing_topic": {"status": missing.status_code, "body": missing.json()},
            "wrong_content_type": {"status": wrong_type.status_code, "body": wrong_type.json()},
        },
        out,
    )
