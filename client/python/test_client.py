"""The Python client against the real service.

Starts `deno run -A tests/helpers/serve_for_python.ts` (a throwaway database + HTTP server + enrollment
token) and steers/reads it through JSON-line commands on its stdin. Run from the repository root:

    python3 -m unittest discover -s client/python -p 'test_*.py'
"""

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from central_mgmt.client import CentralManagementClient, normalize_api_url, to_yaml  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
POOL_A = "ocid1.instancepool.oc1.iad.aaaapythontesta"
POOL_B = "ocid1.instancepool.oc1.iad.aaaapythontestb"


def config_document(cpu_max=75):
    return {"pools": [{
        "instance_pool_id": POOL_A,
        "compartment_id": "ocid1.compartment.oc1..aaaapythontest",
        "region": "us-ashburn-1",
        "monitoring_method": "oci",
        "cpu_threshold": {"min": 30, "max": cpu_max},
        "ram_threshold": {"min": 20, "max": 75},
        "scaling_limits": {"min": 1, "max": 10},
        "scheduler_max_instances": 3,
        "schedules": [{"start_time": "05:30", "end_time": "05:50"}],
    }]}


class Server:
    """The serve_for_python.ts process and its JSON-line command channel."""

    def __init__(self):
        deno = shutil.which("deno") or "deno"
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [deno, "run", "-A", "tests/helpers/serve_for_python.ts"], cwd=REPO, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1,
            env={**os.environ, "NO_COLOR": "1"})
        self.lock = threading.Lock()
        hello = self._read()
        self.url, self.base_url, self.token = hello["url"], hello["base_url"], hello["token"]

    def _read(self):
        while True:
            line = self.process.stdout.readline()
            if not line:
                self.stderr.seek(0)
                raise RuntimeError("serve_for_python.ts exited (code %s): %s"
                                   % (self.process.wait(10), self.stderr.read()[-2000:]))
            line = line.strip()
            if line.startswith("{"):  # anything else is runtime chatter
                return json.loads(line)

    def call(self, cmd, **args):
        with self.lock:
            self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
            self.process.stdin.flush()
            answer = self._read()
        if not answer.get("ok"):
            raise RuntimeError("%s failed: %s" % (cmd, answer.get("error")))
        return answer["result"]

    def close(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=20)
        except Exception:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


SERVER = None


def setUpModule():
    global SERVER
    SERVER = Server()


def tearDownModule():
    if SERVER:
        SERVER.close()


def eventually(what, check, timeout=15.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last = error
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class ClientTestCase(unittest.TestCase):
    counter = 0

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="central-py-")
        self.config_path = os.path.join(self.dir, "config.yaml")
        with open(self.config_path, "w") as handle:
            handle.write(to_yaml(config_document()))
        ClientTestCase.counter += 1
        self.name = "py-%s-%d" % (self._testMethodName.replace("_", "-")[5:40], ClientTestCase.counter)
        self.errors = []
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.stop(timeout=0.5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, **overrides):
        options = dict(central_api_url=SERVER.url, local_config_path=self.config_path,
                       enrollment_token=SERVER.token, node_name=self.name, hostname="py-test.internal",
                       agent_version="py-1.0", heartbeat_interval=0.15, flush_interval=0.05, retry_base=0.05,
                       retry_max=0.3, config_wait=2, request_timeout=3)
        options.update(overrides)
        client = CentralManagementClient(**options)
        client.on("error", lambda e: self.errors.append("%s: %s" % (e["context"], e["error"])))
        self.clients.append(client)
        return client

    def node(self):
        return SERVER.call("node", name=self.name)

    def samples(self, node_id):
        return SERVER.call("samples", node_id=node_id)

    def started(self, **overrides):
        client = self.client(**overrides)
        client.start()
        self.assertTrue(client.wait_registered(10))
        return client

    def state(self):
        with open(self.config_path + ".central-state.json") as handle:
            return json.load(handle)


class ReadmeExampleTest(ClientTestCase):
    def test_readme_example_works_unchanged_with_url_and_env_token(self):
        os.environ["CENTRAL_ENROLLMENT_TOKEN"] = SERVER.token
        os.environ["CENTRAL_NODE_NAME"] = self.name
        try:
            # The README example, with a real URL and path.
            from central_mgmt.client import CentralManagementClient as ReadmeClient

            client = ReadmeClient(
                central_api_url=SERVER.base_url + "/api",
                local_config_path=self.config_path
            )
            client.start()
            client.send_metrics(
                instance_pool_id="ocid1.instancepool.oc1.iad.aaaareadme",
                cpu_util=75.5,
                memory_util=60.2,
                instance_count=3,
                scaling_event=True,
                scaling_direction="UP"
            )
            client.stop()
        finally:
            del os.environ["CENTRAL_ENROLLMENT_TOKEN"]
            del os.environ["CENTRAL_NODE_NAME"]
        node = self.node()
        self.assertIsNotNone(node)
        self.assertEqual(client.node_id, node["id"])
        self.assertEqual(self.samples(node["id"]), 1)
        self.assertEqual(SERVER.call("events", node_id=node["id"]),
                         [{"direction": "UP", "from_count": None, "to_count": None}])
        self.assertEqual(client.dropped_samples, 0)


class ProtocolTest(ClientTestCase):
    def test_registers_heartbeats_and_brings_config_as_version_1(self):
        registered = []
        client = self.client()
        client.on("registered", registered.append)
        client.start()
        self.assertTrue(client.wait_registered(10))
        self.assertEqual(len(registered), 1)
        self.assertTrue(registered[0]["created"])
        state = self.state()
        self.assertEqual(state["node_id"], client.node_id)
        self.assertTrue(state["node_token"].startswith("acn_"))
        self.assertEqual(os.stat(self.config_path + ".central-state.json").st_mode & 0o777, 0o600)
        versions = SERVER.call("config_versions", node_id=client.node_id)
        self.assertEqual([(v["version"], v["source"]) for v in versions], [(1, "agent")])
        self.assertEqual(versions[0]["body"], config_document())
        with open(self.config_path) as handle:  # the agent's own file is kept as its text
            self.assertEqual(versions[0]["yaml"], handle.read())
        node = eventually("in sync with a heartbeat", lambda: (lambda n: n if n["config_state"] == "in_sync"
                                                               and n["last_heartbeat_at"] else None)(self.node()))
        self.assertEqual(node["applied_hash"], versions[0]["hash"])
        self.assertEqual(node["reported_status"], "ok")
        self.assertEqual(node["agent_version"], "py-1.0")

    def test_metrics_arrive_exactly_once(self):
        client = self.started()
        base = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
        for i in range(250):
            extra = dict(scaling_event=True, scaling_direction="down", from_count=4, to_count=3) if i == 7 else {}
            client.send_metrics(instance_pool_id=POOL_A if i % 2 else POOL_B, cpu_util=i % 100, memory_util=40,
                                instance_count=3, ts=base + dt.timedelta(milliseconds=i), **extra)
        eventually("250 stored", lambda: self.samples(client.node_id) == 250)
        eventually("buffer empty", lambda: client.stats["buffered"] == 0)
        self.assertEqual(client.stats["duplicates"], 0)
        self.assertEqual(self.samples(client.node_id), 250)
        self.assertEqual(SERVER.call("events", node_id=client.node_id),
                         [{"direction": "DOWN", "from_count": 4, "to_count": 3}])

    def test_config_change_written_atomically_and_acked(self):
        seen = []
        client = self.started(on_config=lambda config: seen.append(config))
        eventually("in sync", lambda: self.node()["config_state"] == "in_sync")
        with open(self.config_path) as handle:
            previous = handle.read()
        new = SERVER.call("set_config", node_id=client.node_id, config=config_document(80))
        eventually("acked in sync", lambda: (lambda n: n["config_state"] == "in_sync"
                                             and n["applied_hash"] == new["hash"])(self.node()))
        with open(self.config_path) as handle:
            text = handle.read()
        with open(self.config_path + ".bak") as handle:
            self.assertEqual(handle.read(), previous)
        self.assertIn("max: 80", text)
        self.assertIn('start_time: "05:30"', text)
        self.assertEqual([c["version"] for c in seen], [new["version"]])
        self.assertEqual(seen[0]["body"], config_document(80))
        self.assertEqual(client.applied_config_hash, new["hash"])
        self.assertEqual(self.state()["applied_config_hash"], new["hash"])
        self.assertEqual([n for n in os.listdir(self.dir) if n.endswith(".tmp")], [])
        try:
            import yaml  # noqa: F401 - only to check the emitted YAML reads back as the document
        except ImportError:
            return
        self.assertEqual(yaml.safe_load(text), config_document(80))

    def test_operator_yaml_written_byte_for_byte_comment_edit_too(self):
        client = self.started()
        eventually("in sync", lambda: self.node()["config_state"] == "in_sync")
        written = ("# web tier: raised after the March incident\n"
                   "pools:\n"
                   "  - instance_pool_id: %s   # the main pool\n"
                   "    compartment_id: ocid1.compartment.oc1..aaaapytest\n"
                   "    region: us-ashburn-1\n"
                   "    cpu_threshold: {min: 30, max: 81}\n"
                   "    ram_threshold: {min: 20, max: 75}\n"
                   "    scaling_limits: {min: 1, max: 10}\n" % POOL_A)
        for text in (written, written.replace("March", "April")):
            new = SERVER.call("set_config", node_id=client.node_id, config=text)
            eventually("acked in sync", lambda: (lambda n: n["config_state"] == "in_sync"
                                                 and n["applied_hash"] == new["hash"])(self.node()))
            with open(self.config_path, "rb") as handle:
                on_disk = handle.read()
            self.assertEqual(on_disk.decode("utf-8"), text)
            self.assertEqual(hashlib.sha256(on_disk).hexdigest(), new["hash"])

    def test_older_server_without_yaml_field_gets_a_rendering(self):
        client = self.started()
        eventually("in sync", lambda: self.node()["config_state"] == "in_sync")
        # What a server from before the yaml field sends: hash and body only.
        client._apply_config({"version": 9, "hash": "ab" * 32, "body": config_document(66)})
        with open(self.config_path) as handle:
            text = handle.read()
        self.assertTrue(text.startswith("# Managed by Autoscaler Central: version 9, hash abababababab."), text)
        self.assertEqual(text, to_yaml(config_document(66), [
            "Managed by Autoscaler Central: version 9, hash abababababab.",
            "Local edits are replaced when the server's config changes; edit it there."]))

    def test_callback_failure_acks_failed_with_its_message(self):
        def refuse(config):
            if config["body"]["pools"][0]["cpu_threshold"]["max"] == 90:
                raise RuntimeError("refusing max 90 in this test")

        client = self.started(on_config=refuse)
        eventually("in sync", lambda: self.node()["config_state"] == "in_sync")
        bad = SERVER.call("set_config", node_id=client.node_id, config=config_document(90))
        node = eventually("failed", lambda: (lambda n: n if n["config_state"] == "failed" else None)(self.node()))
        self.assertEqual(node["config_error"], "refusing max 90 in this test")
        self.assertNotEqual(node["applied_hash"], bad["hash"])
        self.assertTrue(any("refusing max 90" in e for e in self.errors))
        good = SERVER.call("set_config", node_id=client.node_id, config=config_document(70))
        eventually("in sync again", lambda: (lambda n: n["config_state"] == "in_sync"
                                             and n["applied_hash"] == good["hash"])(self.node()))

    def test_restart_keeps_the_node_without_registering_again(self):
        first = self.started()
        node_id = first.node_id
        eventually("in sync", lambda: self.node()["config_state"] == "in_sync")
        first.stop()
        uses = SERVER.call("token_uses")
        second = self.client()
        registered = []
        second.on("registered", registered.append)
        second.start()
        self.assertEqual(second.node_id, node_id)
        second.send_metrics(instance_pool_id=POOL_A, cpu_util=1, memory_util=1, instance_count=1)
        eventually("sample after restart", lambda: self.samples(node_id) == 1)
        eventually("heartbeat after restart", lambda: second.stats["heartbeats"] >= 1)
        self.assertEqual(registered, [])
        self.assertEqual(SERVER.call("token_uses"), uses)
        self.assertEqual(self.node()["config_state"], "in_sync")

    def test_outage_then_back_loses_nothing(self):
        client = self.started()
        SERVER.call("outage")
        try:
            base = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
            for i in range(300):
                client.send_metrics(instance_pool_id=POOL_A, cpu_util=50, memory_util=50, instance_count=2,
                                    ts=base + dt.timedelta(milliseconds=i))
            eventually("send failures", lambda: any(e.startswith("metrics") for e in self.errors))
            self.assertEqual(client.stats["buffered"], 300)
        finally:
            SERVER.call("recover")
        eventually("300 stored", lambda: self.samples(client.node_id) == 300)
        eventually("buffer empty", lambda: client.stats["buffered"] == 0)
        self.assertEqual(client.dropped_samples, 0)

    def test_refused_node_token_waits_for_an_operators_reenrollment_token(self):
        client = self.started()
        node_id = client.node_id
        old_token = self.state()["node_token"]
        uses = SERVER.call("token_uses")
        registered = []
        client.on("registered", registered.append)
        SERVER.call("revoke_node_token", node_id=node_id)
        client.send_metrics(instance_pool_id=POOL_A, cpu_util=3, memory_util=3, instance_count=1)
        eventually("name clash reported", lambda: client.stats["name_taken"] >= 1)
        self.assertTrue(any("HTTP 401" in e for e in self.errors))
        self.assertTrue(any("HTTP 409: node_name_taken" in e for e in self.errors), self.errors)
        client.set_enrollment_token(SERVER.call("reenrollment_token", node_id=node_id))
        eventually("sample after re-enrollment", lambda: self.samples(node_id) == 1)
        self.assertEqual(len(registered), 1)
        self.assertEqual(registered[0]["node_id"], node_id)
        self.assertEqual(registered[0]["reason"], "reenroll")
        self.assertFalse(registered[0]["created"])
        self.assertNotEqual(self.state()["node_token"], old_token)
        self.assertEqual(SERVER.call("token_uses"), uses + 1)

    def test_a_registration_whose_answer_is_lost_is_retried_into_the_same_node(self):
        client = self.client()
        real_http = client._http
        lost = []
        sent_ids = []

        def losing_http(method, path, body=None, *args, **kwargs):
            if path == "/register":
                sent_ids.append(body.get("registration_id"))
            answer = real_http(method, path, body, *args, **kwargs)
            if path == "/register" and not lost:
                lost.append(answer[0])  # the server registered the node; its answer never arrives
                raise OSError("connection reset by peer")
            return answer

        client._http = losing_http
        client.start()
        self.assertTrue(client.wait_registered(10), (self.errors, sent_ids, lost))
        self.assertEqual(lost, [201])
        self.assertEqual(len(set(sent_ids)), 1, "one registration_id across the retry")
        self.assertEqual(len(sent_ids), 2)
        self.assertEqual(client.node_id, self.node()["id"])
        self.assertEqual(client.stats["name_taken"], 0)

    def test_second_agent_with_the_same_name_backs_off_and_takes_nothing(self):
        owner = self.started()
        owner_hash = SERVER.call("token_hash", node_id=owner.node_id)
        twin_dir = tempfile.mkdtemp(prefix="central-py-twin-")
        try:
            twin = self.client(local_config_path=os.path.join(twin_dir, "config.yaml"), name_taken_retry=0.4,
                               send_config_at_registration=False)
            twin.start()
            eventually("twin refused", lambda: twin.stats["name_taken"] >= 1)
            self.assertTrue(any("node_name_taken" in e and "re-enrollment token" in e for e in self.errors),
                            self.errors)
            heartbeats = owner.stats["heartbeats"]
            time.sleep(1.0)
            self.assertLessEqual(twin.stats["name_taken"], 4)
            self.assertIsNone(twin.node_id)
            self.assertEqual(SERVER.call("token_hash", node_id=owner.node_id), owner_hash)
            self.assertGreater(owner.stats["heartbeats"], heartbeats)
        finally:
            shutil.rmtree(twin_dir, ignore_errors=True)

    def test_batch_answered_400_or_503_is_sent_again_not_dropped(self):
        import io
        import urllib.error
        import urllib.request
        from unittest import mock
        answers = [(400, {"error": {"code": "bad_request", "message": "Malformed JSON in request body"}}),
                   (503, {"error": {"code": "shutting_down", "message": "this replica is shutting down"}})]
        real_urlopen = urllib.request.urlopen

        def faulty_urlopen(request, *args, **kwargs):
            if request.full_url.endswith("/metrics") and answers:
                status, body = answers.pop(0)
                raise urllib.error.HTTPError(request.full_url, status, "refused", {"Connection": "close"},
                                             io.BytesIO(json.dumps(body).encode()))
            return real_urlopen(request, *args, **kwargs)

        with mock.patch("urllib.request.urlopen", faulty_urlopen):
            client = self.started(send_config_at_registration=False)
            client.send_metrics(instance_pool_id=POOL_A, cpu_util=7, memory_util=7, instance_count=1)
            eventually("stored after two refusals", lambda: self.samples(client.node_id) == 1)
        self.assertEqual(answers, [])
        self.assertEqual(client.dropped_samples, 0)

    def test_refused_sample_is_dropped_and_counted_not_retried(self):
        client = self.started()
        dropped = []
        client.on("dropped", dropped.append)
        now = dt.datetime.now(dt.timezone.utc)
        client.send_metrics(instance_pool_id=POOL_B, cpu_util=1, memory_util=1, instance_count=1,
                            ts=now - dt.timedelta(seconds=2))
        client.send_metrics(instance_pool_id=POOL_B, cpu_util=1, memory_util=1, instance_count=1,
                            ts=now + dt.timedelta(hours=1))  # an hour ahead: refused
        client.send_metrics(instance_pool_id=POOL_B, cpu_util=1, memory_util=1, instance_count=1,
                            ts=now - dt.timedelta(seconds=1))
        eventually("two stored", lambda: self.samples(client.node_id) == 2)
        eventually("buffer empty", lambda: client.stats["buffered"] == 0)
        self.assertEqual(client.dropped_samples, 1)
        self.assertEqual(dropped, [{"count": 1, "reason": "rejected", "total": 1}])
        self.assertTrue(any("samples.1.ts" in e for e in self.errors))

    def test_full_buffer_drops_the_oldest_and_counts_them(self):
        client = self.started(buffer_size=50, batch_size=20)
        SERVER.call("outage")
        base = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
        try:
            for i in range(80):
                client.send_metrics(instance_pool_id=POOL_A, cpu_util=5, memory_util=5, instance_count=1,
                                    ts=base + dt.timedelta(milliseconds=i))
            self.assertEqual(client.dropped_samples, 30)
            self.assertEqual(client.stats["dropped_overflow"], 30)
            self.assertEqual(client.stats["buffered"], 50)
        finally:
            SERVER.call("recover")
        eventually("the 50 newest stored", lambda: self.samples(client.node_id) == 50)

    def test_stop_flushes_within_its_deadline(self):
        client = self.started(flush_interval=60)  # only stop() sends
        for i in range(10):
            client.send_metrics(instance_pool_id=POOL_A, cpu_util=5, memory_util=5, instance_count=1)
        began = time.monotonic()
        stats = client.stop(timeout=3)
        self.assertLess(time.monotonic() - began, 3.5)
        self.assertEqual(stats["buffered"], 0)
        self.assertEqual(self.samples(client.node_id), 10)
        client.send_metrics(instance_pool_id=POOL_A, cpu_util=5, memory_util=5, instance_count=1)
        self.assertEqual(client.stats["dropped_after_stop"], 1)


class ArgumentTest(ClientTestCase):
    def test_bad_arguments_raise_value_error_naming_the_field(self):
        client = self.client()
        good = dict(instance_pool_id=POOL_A, cpu_util=10, memory_util=10, instance_count=1)
        cases = [
            (dict(cpu_util=150), "cpu_util must be within 0..100"),
            (dict(memory_util=-0.5), "memory_util must be within 0..100"),
            (dict(cpu_util="high"), "cpu_util must be a number"),
            (dict(cpu_util=True), "cpu_util must be a number"),
            (dict(instance_count=-1), "instance_count must be at least 0"),
            (dict(instance_count=1.5), "instance_count must be a whole number"),
            (dict(scaling_direction="UP"), "scaling_direction is only allowed with scaling_event=True"),
            (dict(scaling_event=True), "scaling_direction (\"UP\" or \"DOWN\") is required"),
            (dict(scaling_event=True, scaling_direction="SIDEWAYS"), 'scaling_direction must be "UP" or "DOWN"'),
            (dict(instance_pool_id=""), "instance_pool_id"),
            (dict(ts="yesterday"), "ts must be"),
            (dict(ts="2026-01-01T00:00:00"), "ts must carry a time zone"),
        ]
        for override, message in cases:
            with self.subTest(override=override):
                with self.assertRaises(ValueError) as raised:
                    client.send_metrics(**{**good, **override})
                self.assertIn(message, str(raised.exception))
        self.assertEqual(client.stats["buffered"], 0)
        with self.assertRaisesRegex(ValueError, "central_api_url"):
            CentralManagementClient(central_api_url="not a url", local_config_path="x")
        with self.assertRaisesRegex(ValueError, "node_name"):
            CentralManagementClient(central_api_url=SERVER.url, local_config_path="x", node_name="bad name!")
        with self.assertRaisesRegex(ValueError, "buffer_size"):
            CentralManagementClient(central_api_url=SERVER.url, local_config_path="x", buffer_size=0)

    def test_yaml_reads_back_as_the_same_document(self):
        try:
            import yaml  # PyYAML (YAML 1.1) is the stricter reader; only for this check
        except ImportError:
            self.skipTest("PyYAML not installed")
        documents = [config_document(), {
            "pools": [{"instance_pool_id": POOL_A, "prometheus_url": "http://prom:9090",
                       "note": "line1\nline2 # not a comment"}],
            "odd_keys": {"has space": 1, "05:30": "yes", "": "empty key", "-dash": -1.25, "null": None,
                         "true": False},
            "unicode": "Z\u00fcrich \u2713",
            "numbers_as_text": ["1", "1e3", "0x1F", "010", ".5", "+1", "1_000", "1:20", "on", "Y"],
            "nested": [[["deep"]], [], {}],
        }]
        for document in documents:
            self.assertEqual(yaml.safe_load(to_yaml(document, ["a comment"])), document)

    def test_url_normalization(self):
        self.assertEqual(normalize_api_url("http://c:8000/api"), "http://c:8000/api/v1")
        self.assertEqual(normalize_api_url("http://c:8000/api/"), "http://c:8000/api/v1")
        self.assertEqual(normalize_api_url("http://c:8000/api/v1/"), "http://c:8000/api/v1")
        self.assertEqual(normalize_api_url("http://c:8000"), "http://c:8000/api/v1")

    def test_yaml_emitter_matches_the_typescript_one(self):
        # The same document and expected text as tests/client_test.ts reads.
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "yaml_writer.json")
        with open(path, encoding="utf-8") as file:
            fixture = json.load(file)
        self.assertEqual(to_yaml(fixture["document"]), "\n".join(fixture["text"]))


if __name__ == "__main__":
    unittest.main()
