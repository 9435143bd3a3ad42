"""Device gateway, build item 7: accounts are isolated (the same topic in two accounts is two topics, lifecycle
events stay in their account), and the SNI of an account endpoint selects that account with a server certificate
minted for the name."""

from __future__ import annotations

import json

from mqtt_helpers import ALLOW_ALL, Paho, api_device, raw_connect, unique, wait_closed


def test_same_topic_in_two_accounts_is_two_topics(server, iot, iot2, tmp_path):
    d1 = api_device(iot, tmp_path / "a1", "dev-a1", ALLOW_ALL)
    d2 = api_device(iot2, tmp_path / "a2", "dev-a2", ALLOW_ALL)
    topic = f"shared/{unique()}"
    with Paho(server, d1, "sub") as sub1, Paho(server, d2, "sub") as sub2, \
            Paho(server, d1, "pub") as pub1, Paho(server, d2, "pub") as pub2:
        # the same client ids in both accounts do not take each other over
        for c in (sub1, sub2, pub1, pub2):
            c.connect_ok()
        assert sub1.subscribe(topic) == [1]
        assert sub2.subscribe(topic) == [1]

        assert pub2.publish(topic, b"from-account-2") == 0
        assert sub2.wait_message(topic)[1] == b"from-account-2"
        # account 2's message was routed before this one: had it reached account 1, it would come first
        assert pub1.publish(topic, b"from-account-1") == 0
        assert sub1.wait_message(topic)[1] == b"from-account-1"
        assert pub2.publish(topic, b"marker-2") == 0
        assert sub2.wait_message(topic)[1] == b"marker-2"
        assert [m[1] for m in sub1.received] == [b"from-account-1"]
        assert [m[1] for m in sub2.received] == [b"from-account-2", b"marker-2"]
        assert not any(c.disconnects for c in (sub1, sub2, pub1, pub2))


def test_lifecycle_events_stay_in_their_account(server, iot, iot2, tmp_path):
    d1 = api_device(iot, tmp_path / "a1", "dev-a1", ALLOW_ALL)
    d2 = api_device(iot2, tmp_path / "a2", "dev-a2", ALLOW_ALL)
    with Paho(server, d1, "watcher") as w:
        w.connect_ok()
        assert w.subscribe("$aws/events/presence/connected/+") == [1]
        with Paho(server, d2, "in-account-2") as other:
            other.connect_ok()
        with Paho(server, d1, "in-account-1") as mine:
            mine.connect_ok()
        event = json.loads(w.wait_message()[1])
        assert event["clientId"] == "in-account-1", event
        assert event["principalIdentifier"] == d1.cert_id


def test_account_endpoint_sni_selects_the_account(server, iot, iot2, account2, tmp_path):
    endpoint = iot2.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    assert endpoint == account2.endpoint_address
    d1 = api_device(iot, tmp_path / "a1", "dev-a1", ALLOW_ALL)
    d2 = api_device(iot2, tmp_path / "a2", "dev-a2", ALLOW_ALL)
    # the handshake verifies against root-ca.pem for the endpoint name (a certificate minted for it)
    s, code = raw_connect(server, d2, "sni-client", sni=endpoint)
    with s:
        assert endpoint in json.dumps(s.getpeercert()["subjectAltName"])
        assert code == 0
    # account 1's certificate, presented at account 2's endpoint, is refused (3.1.1 return code 5)
    s, code = raw_connect(server, d1, "sni-client", sni=endpoint, expect_ok=False)
    with s:
        assert code == 5
        wait_closed(s)
