"""CentralManagementClient: what an autoscaler embeds to talk to Autoscaler Central.

Python 3.9+, standard library only. It registers the node once (keeping node id and token in a state file
beside the config), heartbeats, holds a long-poll for config changes (the server's text written to config.yaml
atomically and acknowledged), and ships metric samples in batches from a bounded buffer.

Failure model: nothing here raises for network or server trouble. Bad arguments raise ValueError at the
call, naming the field; everything else is retried in the background and reported to "error" listeners
(and the "central_mgmt" logger).

    client = CentralManagementClient(
        central_api_url="http://central-management:8000/api",
        local_config_path="/path/to/config.yaml",
    )
    client.start()
    client.send_metrics(instance_pool_id="ocid1.instancepool.oc1...", cpu_util=75.5, memory_util=60.2,
                        instance_count=3, scaling_event=True, scaling_direction="UP")
    client.stop()
"""

import collections
import datetime as _dt
import json
import logging
import math
import os
import random
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["CentralManagementClient", "CentralRequestError", "normalize_api_url", "to_yaml"]

log = logging.getLogger("central_mgmt")

NODE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
MAX_BATCH = 1000
EVENTS = ("error", "registered", "config", "dropped", "heartbeat")


class CentralRequestError(Exception):
    """A refused or failed request to the server (status None for network trouble)."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.status = status
        self.code = code


class _Stopped(Exception):
    pass


class _Decommissioned(CentralRequestError):
    pass


def normalize_api_url(raw):
    """".../api", ".../api/", ".../api/v1" (and a bare origin) -> ".../api/v1"."""
    if not isinstance(raw, str):
        raise ValueError("central_api_url must be an http(s) URL (got %r)" % (raw,))
    parts = urllib.parse.urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("central_api_url must be an http(s) URL (got %r)" % (raw,))
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        pass
    elif path.endswith("/api"):
        path += "/v1"
    else:
        path += "/api/v1"
    return "%s://%s%s" % (parts.scheme, parts.netloc, path)


# ---- YAML ---------------------------------------------------------------------------------------------
# A small emitter for the config document, so no YAML library is needed. Strings are plain only when no
# YAML 1.1 or 1.2 reader could take them for anything but a string ("05:30", "yes", "1e3" get quotes);
# everything else is double-quoted JSON, which is valid YAML.

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_RESERVED = re.compile(r"^(?:y|n|yes|no|on|off|true|false|null|nan|inf|~)$", re.IGNORECASE)


def _scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("cannot write %r to YAML" % (value,))
        return json.dumps(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and not _RESERVED.match(value):
            return value
        return json.dumps(value, ensure_ascii=False)
    raise ValueError("cannot write a %s to YAML" % type(value).__name__)


def _inline(value):
    if isinstance(value, (list, tuple)):
        return "[]"
    if isinstance(value, dict):
        return "{}"
    return _scalar(value)


def _emit(value, indent, lines):
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, dict) and item:
                nested = []
                _emit(item, indent + "  ", nested)
                lines.append("%s- %s" % (indent, nested[0][len(indent) + 2:]))
                lines.extend(nested[1:])
            elif isinstance(item, (list, tuple)) and item:
                lines.append(indent + "-")
                _emit(item, indent + "  ", lines)
            else:
                lines.append("%s- %s" % (indent, _inline(item)))
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list, tuple)) and item:
                lines.append("%s%s:" % (indent, _scalar(str(key))))
                _emit(item, indent + "  ", lines)
            else:
                lines.append("%s%s: %s" % (indent, _scalar(str(key)), _inline(item)))
        return
    lines.append(indent + _scalar(value))


def to_yaml(document, comments=()):
    """The document (dicts, lists, scalars) as block-style YAML text, led by optional comment lines.

    Only a fallback: servers send config.yaml as the operator wrote it ("yaml"), written as is."""
    lines = ["# " + line for line in comments]
    if not document:
        lines.append("{}")
    else:
        _emit(document, "", lines)
    return "\n".join(lines) + "\n"


# ---- files ----------------------------------------------------------------------------------------------

def write_atomic(path, text, mode=None, backup_path=None):
    """Replaces `path` atomically: temp file in the same directory, fsync, rename (keeping the previous
    file at `backup_path` when given)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:  # the text byte for byte
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644 if mode is None else mode)
        if backup_path and os.path.exists(path):
            shutil.copyfile(path, backup_path)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    try:  # make the rename durable; not every platform can open a directory
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


# ---- argument checks ------------------------------------------------------------------------------------

def _number(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError("%s must be a number (got %r)" % (field, value))
    return value


def _percent(field, value):
    value = _number(field, value)
    if not 0 <= value <= 100:
        raise ValueError("%s must be within 0..100 (got %r)" % (field, value))
    return float(value)


def _count(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise ValueError("%s must be a whole number (got %r)" % (field, value))
    if value < 0:
        raise ValueError("%s must be at least 0 (got %r)" % (field, value))
    return int(value)


def _timestamp(value):
    if value is None:
        moment = _dt.datetime.now(_dt.timezone.utc)
    elif isinstance(value, _dt.datetime):
        moment = value if value.tzinfo else value.astimezone()  # naive: local time
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
    elif isinstance(value, str):
        try:
            moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("ts must be a datetime, epoch seconds or ISO 8601 text (got %r)" % (value,))
        if moment.tzinfo is None:
            raise ValueError("ts must carry a time zone (got %r)" % (value,))
    else:
        raise ValueError("ts must be a datetime, epoch seconds or ISO 8601 text (got %r)" % (value,))
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _positive_int(field, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError("%s must be a whole number of at least %d (got %r)" % (field, minimum, value))
    return value


def _non_negative(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError("%s must be a number of at least 0 (got %r)" % (field, value))
    return float(value)


def _details(body):
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        details = body["error"].get("details")
        if isinstance(details, list):
            return [d for d in details if isinstance(d, dict)]
    return []


def _refusal(status, body, what):
    error = body.get("error") if isinstance(body, dict) else None
    code = message = None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
    detail = ": %s %s" % (code or "", message) if message else ""
    return CentralRequestError("%s (HTTP %s%s)" % (what, status, detail.replace(":  ", ": ")), status, code)


class CentralManagementClient:
    """Registers, heartbeats, reports metrics and applies config pushed by Autoscaler Central.

    Only central_api_url and local_config_path are required; the enrollment token and node name come
    from the arguments or from CENTRAL_ENROLLMENT_TOKEN / CENTRAL_NODE_NAME (default: the host name).
    Times are in seconds.
    """

    def __init__(self, central_api_url, local_config_path, enrollment_token=None, node_name=None,
                 hostname=None, region=None, labels=None, pools=None, agent_version=None, address=None,
                 state_path=None, buffer_size=10000, batch_size=1000, flush_interval=5.0, on_config=None,
                 send_config_at_registration=True, heartbeat_interval=None, config_wait=30,
                 retry_base=1.0, retry_max=60.0, request_timeout=15.0, name_taken_retry=300.0):
        self.api_url = normalize_api_url(central_api_url)
        if not isinstance(local_config_path, (str, os.PathLike)) or not str(local_config_path):
            raise ValueError("local_config_path must be a file path (got %r)" % (local_config_path,))
        self.local_config_path = os.fspath(local_config_path)
        self.state_path = os.fspath(state_path) if state_path else self.local_config_path + ".central-state.json"

        self.hostname = hostname or socket.gethostname()
        name = node_name or os.environ.get("CENTRAL_NODE_NAME")
        if name is None:
            name = re.sub(r"[^A-Za-z0-9._-]", "-", self.hostname)[:128] or "autoscaler"
        if not NODE_NAME.match(name):
            raise ValueError("node_name must be 1..128 of A-Z a-z 0-9 . _ - (got %r)" % (name,))
        self.node_name = name
        self.enrollment_token = enrollment_token or os.environ.get("CENTRAL_ENROLLMENT_TOKEN") or None

        if labels is not None and not isinstance(labels, dict):
            raise ValueError("labels must be a dict of strings")
        if pools is not None and not isinstance(pools, (list, tuple)):
            raise ValueError("pools must be a list of dicts")
        self._register_extra = {k: v for k, v in (("region", region), ("labels", labels), ("pools", pools),
                                                  ("agent_version", agent_version), ("address", address))
                                if v is not None}
        self.agent_version = agent_version
        self.address = address
        self.buffer_size = _positive_int("buffer_size", buffer_size)
        self.batch_size = min(_positive_int("batch_size", batch_size), MAX_BATCH)
        self.flush_interval = _non_negative("flush_interval", flush_interval)
        self.config_wait = int(_non_negative("config_wait", config_wait))
        if self.config_wait > 60:
            raise ValueError("config_wait must be within 0..60 (got %r)" % (config_wait,))
        self.retry_base = _non_negative("retry_base", retry_base) or 0.05
        self.retry_max = max(self.retry_base, _non_negative("retry_max", retry_max))
        self.request_timeout = _non_negative("request_timeout", request_timeout) or 15.0
        # Wait between registrations while the server answers 409 node_name_taken (set_enrollment_token ends it).
        self.name_taken_retry = _non_negative("name_taken_retry", name_taken_retry) or 300.0
        self._heartbeat_override = None if heartbeat_interval is None else _non_negative(
            "heartbeat_interval", heartbeat_interval)
        self.heartbeat_interval = self._heartbeat_override or 30.0
        if on_config is not None and not callable(on_config):
            raise ValueError("on_config must be callable")
        self.on_config = on_config
        self.send_config_at_registration = send_config_at_registration

        self.node_id = None
        self._node_token = None
        # The last node token held: presented at registration, so a node whose token still works rotates it
        # without an operator (the server ignores it otherwise).
        self._last_node_token = None
        self._new_enrollment_token = threading.Event()
        self.applied_config_hash = None
        self._seen_hash = None
        self._pending_ack = None
        self._decommissioned = False
        self._started_at = None
        self._listeners = collections.defaultdict(list)

        self._lock = threading.RLock()  # state and buffer
        self._wake_sender = threading.Condition(self._lock)
        self._register_lock = threading.Lock()
        self._registration_id = None  # the registration in progress (see _ensure_registered)
        self._registered = threading.Event()
        self._stop_event = threading.Event()
        self._stopping = False
        self._stopped = False
        self._deadline = None
        self._threads = []

        self._buffer = collections.deque()
        self._in_flight = []
        self._first_buffered_at = 0.0
        self._last_counts = {}
        self._last_auto_ms = {}
        self._stats = dict(sent=0, accepted=0, duplicates=0, dropped=0, dropped_overflow=0,
                           dropped_rejected=0, dropped_after_stop=0, heartbeats=0, registrations=0,
                           name_taken=0, configs_applied=0, configs_failed=0)

    # ---- public -----------------------------------------------------------------------------------------

    def set_enrollment_token(self, token):
        """Replaces the enrollment token, e.g. with the re-enrollment token an operator made for this node after
        the server answered 409 node_name_taken; a registration waiting after that refusal tries at once."""
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token must be a non-empty string")
        self.enrollment_token = token.strip()
        self._new_enrollment_token.set()

    @property
    def dropped_samples(self):
        """Samples lost: buffer overflow, refused by the server, or given after stop()."""
        return self._stats["dropped"]

    @property
    def stats(self):
        with self._lock:
            result = dict(self._stats)
            result["buffered"] = len(self._buffer) + len(self._in_flight)
            return result

    def on(self, event, listener):
        """Calls listener(payload_dict) on "error", "registered", "config", "dropped" or "heartbeat"."""
        if event not in EVENTS:
            raise ValueError("event must be one of %s (got %r)" % (", ".join(EVENTS), event))
        self._listeners[event].append(listener)
        return lambda: self._listeners[event].remove(listener)

    def start(self):
        """Loads the saved state and starts the background threads; returns at once."""
        if self._started_at is not None:
            raise RuntimeError("start() may be called once")
        self._started_at = time.monotonic()
        self._load_state()
        for name, target in (("heartbeat", self._heartbeat_loop), ("config", self._config_loop),
                             ("metrics", self._sender_loop)):
            thread = threading.Thread(target=target, name="central-mgmt-" + name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def wait_registered(self, timeout=None):
        """True once the client holds a node id and token (waits up to `timeout` seconds)."""
        return self._registered.wait(timeout)

    def send_metrics(self, instance_pool_id, cpu_util, memory_util, instance_count, scaling_event=False,
                     scaling_direction=None, from_count=None, to_count=None, reason=None, ts=None):
        """Queues one sample (timestamped now unless `ts` is given). Never blocks, never raises for
        network trouble; raises ValueError naming the field for bad arguments."""
        if not isinstance(instance_pool_id, str) or not instance_pool_id.strip() or len(instance_pool_id) > 255:
            raise ValueError("instance_pool_id must be a non-empty string of at most 255 characters")
        sample = {
            "instance_pool_id": instance_pool_id,
            "ts": "",
            "cpu_util": _percent("cpu_util", cpu_util),
            "memory_util": _percent("memory_util", memory_util),
            "instance_count": _count("instance_count", instance_count),
            "scaling_event": False,
            "scaling_direction": None,
        }
        if not isinstance(scaling_event, bool):
            raise ValueError("scaling_event must be True or False (got %r)" % (scaling_event,))
        if scaling_direction is not None:
            direction = scaling_direction.upper() if isinstance(scaling_direction, str) else scaling_direction
            if direction not in ("UP", "DOWN"):
                raise ValueError('scaling_direction must be "UP" or "DOWN" (got %r)' % (scaling_direction,))
            if not scaling_event:
                raise ValueError("scaling_direction is only allowed with scaling_event=True")
            sample["scaling_direction"] = direction
        elif scaling_event:
            raise ValueError('scaling_direction ("UP" or "DOWN") is required when scaling_event is True')
        sample["scaling_event"] = scaling_event
        if from_count is not None:
            sample["from_count"] = _count("from_count", from_count)
        if to_count is not None:
            sample["to_count"] = _count("to_count", to_count)
        if reason is not None:
            if not isinstance(reason, str) or len(reason) > 500:
                raise ValueError("reason must be a string of at most 500 characters")
            sample["reason"] = reason
        if ts is None:
            # Samples are keyed by (node, pool, millisecond): two calls within one millisecond must not
            # collapse into a duplicate, so an automatic time is kept strictly increasing per pool.
            with self._lock:
                now_ms = int(time.time() * 1000)
                last_ms = self._last_auto_ms.get(instance_pool_id)
                if last_ms is not None and now_ms <= last_ms:
                    now_ms = last_ms + 1
                self._last_auto_ms[instance_pool_id] = now_ms
            ts = now_ms / 1000.0
        sample["ts"] = _timestamp(ts)

        with self._lock:
            if self._stopped:
                self._drop(1, "stopped")
                return
            self._last_counts[instance_pool_id] = sample["instance_count"]
            if not self._buffer:
                self._first_buffered_at = time.monotonic()
            self._buffer.append(sample)
            overflow = len(self._buffer) + len(self._in_flight) - self.buffer_size
            if overflow > 0:
                removable = min(overflow, len(self._buffer) - 1)
                for _ in range(removable):
                    self._buffer.popleft()
                if removable < overflow:  # everything older is in flight: the new one goes
                    self._buffer.pop()
                self._drop(overflow, "overflow")
            if len(self._buffer) == 1 or len(self._buffer) >= self.batch_size:
                self._wake_sender.notify_all()

    def stop(self, timeout=5.0):
        """Stops the threads and sends what it can of the buffer within `timeout` seconds. Returns stats."""
        if self._started_at is None or self._stopped:
            self._stopped = True
            return self.stats
        with self._lock:
            self._stopping = True
            self._deadline = time.monotonic() + timeout
            self._stop_event.set()
            self._wake_sender.notify_all()
        # The config thread may sit in a long-poll: it is a daemon and discards whatever arrives after
        # stop(), so only the threads that matter for the flush are waited for.
        for thread in self._threads:
            if thread.name != "central-mgmt-config":
                thread.join(max(0.0, self._deadline - time.monotonic()))
        with self._lock:
            self._stopped = True
            self._wake_sender.notify_all()
        self._registered.set()  # release wait_registered() callers
        return self.stats

    # ---- events -----------------------------------------------------------------------------------------

    def _emit(self, event, payload):
        listeners = list(self._listeners.get(event, ()))
        if event == "error" and not listeners:
            log.warning("%s: %s", payload["context"], payload["error"])
        for listener in listeners:
            try:
                listener(payload)
            except Exception:  # a listener's failure is not ours
                log.exception("central_mgmt %s listener failed", event)

    def _error(self, context, error):
        self._emit("error", {"context": context, "error": error})

    def _drop(self, count, reason):
        if count <= 0:
            return
        with self._lock:
            self._stats["dropped"] += count
            self._stats["dropped_" + {"overflow": "overflow", "rejected": "rejected",
                                      "stopped": "after_stop"}[reason]] += count
            total = self._stats["dropped"]
        self._emit("dropped", {"count": count, "reason": reason, "total": total})

    # ---- state file -------------------------------------------------------------------------------------

    def _load_state(self):
        try:
            with open(self.state_path, encoding="utf-8") as handle:
                saved = json.load(handle)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as error:
            self._error("reading state file; registering again", error)
            return
        if not isinstance(saved, dict):
            return
        # Another server or another name means another node: register afresh.
        if saved.get("central_api_url") != self.api_url or saved.get("node_name") != self.node_name:
            return
        if not isinstance(saved.get("node_id"), str) or not isinstance(saved.get("node_token"), str):
            return
        self.node_id = saved["node_id"]
        self._node_token = saved["node_token"]
        applied = saved.get("applied_config_hash")
        self.applied_config_hash = applied if isinstance(applied, str) else None
        self._seen_hash = self.applied_config_hash
        self._registered.set()

    def _save_state(self):
        with self._lock:
            if not self.node_id or not self._node_token:
                return
            state = {
                "central_api_url": self.api_url,
                "node_name": self.node_name,
                "node_id": self.node_id,
                "node_token": self._node_token,
                "applied_config_hash": self.applied_config_hash,
                "updated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            }
            try:
                write_atomic(self.state_path, json.dumps(state, indent=2) + "\n", mode=0o600)
            except OSError as error:
                self._error("writing state file", error)

    # ---- HTTP -------------------------------------------------------------------------------------------

    def _http(self, method, path, body=None, token=None, headers=None, timeout=None):
        data = None
        all_headers = {"Accept": "application/json", "User-Agent": "central-mgmt-python"}
        if headers:
            all_headers.update(headers)
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        if token:
            all_headers["Authorization"] = "Bearer " + token
        request = urllib.request.Request(self.api_url + path, data=data, headers=all_headers, method=method)
        timeout = self.request_timeout if timeout is None else timeout
        if self._stopping and self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise _Stopped()
            timeout = min(timeout, remaining)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, response_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, response_headers = error.code, error.read(), error.headers
            error.close()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise CentralRequestError("%s %s: %s" % (method, path, reason))
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
        return status, parsed, response_headers

    def _node_call(self, method, suffix, body=None, headers=None, timeout=None):
        """A node route with the node token; re-enrolls once on 401/403/404, stops on 410."""
        for attempt in (0, 1):
            self._ensure_registered()
            with self._lock:
                token, node_id = self._node_token, self.node_id
            status, parsed, response_headers = self._http(method, "/nodes/%s%s" % (node_id, suffix), body,
                                                          token, headers, timeout)
            if status in (401, 403, 404) and attempt == 0:
                self._error("%s %s" % (method, suffix),
                            _refusal(status, parsed, "node token refused; re-enrolling"))
                with self._lock:
                    if self._node_token == token:
                        self._last_node_token = token
                        self._node_token = None
                        self.node_id = None
                        self._registered.clear()
                continue
            if status == 410:
                self._decommissioned = True
                raise _Decommissioned(str(_refusal(status, parsed, "this node is decommissioned")), 410)
            return status, parsed, response_headers
        return status, parsed, response_headers

    def _backoff(self, failures):
        ceiling = min(self.retry_max, self.retry_base * (2 ** min(failures, 30)))
        return ceiling / 2 + random.random() * ceiling / 2

    def _pause(self, seconds):
        """Sleeps; ends early at stop() while running, and never past the stop deadline while stopping."""
        if self._stopping:
            remaining = (self._deadline or 0) - time.monotonic()
            if remaining <= 0:
                raise _Stopped()
            time.sleep(min(seconds, remaining))
        elif self._stop_event.wait(seconds):
            if threading.current_thread().name != "central-mgmt-metrics":
                raise _Stopped()

    # ---- registration -----------------------------------------------------------------------------------

    def _ensure_registered(self):
        failures = 0
        while True:
            if self._decommissioned:
                raise _Decommissioned("this node is decommissioned", 410)
            with self._lock:
                if self.node_id and self._node_token:
                    return
            if self._stopping and threading.current_thread().name != "central-mgmt-metrics":
                raise _Stopped()
            with self._register_lock:
                with self._lock:
                    if self.node_id and self._node_token:
                        return
                # One id for this registration and its retries, whichever thread sends them: a retry whose
                # first answer was lost (a timeout, a dropped connection) gets the node back instead of 409
                # node_name_taken.
                if self._registration_id is None:
                    self._registration_id = secrets.token_urlsafe(24)
                try:
                    if self._register_once(self._registration_id):
                        self._registration_id = None
                        return
                except _Decommissioned:
                    raise
                except _Stopped:
                    raise
                except Exception as error:  # noqa: BLE001 - reported, then retried
                    self._error("register", error)
                    if isinstance(error, CentralRequestError) and error.code == "node_name_taken":
                        # Never fight over a name: asking again soon would change nothing. Wait long, or
                        # until set_enrollment_token() brings the operator's re-enrollment token.
                        self._wait_for_enrollment_token(self.name_taken_retry * random.uniform(0.9, 1.1))
                        continue
            self._pause(self._backoff(failures))
            failures += 1

    def _wait_for_enrollment_token(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._new_enrollment_token.is_set():
                self._new_enrollment_token.clear()
                return
            self._pause(min(remaining, 0.1))

    def _register_once(self, registration_id):
        if not self.enrollment_token:
            raise CentralRequestError("no enrollment token: pass enrollment_token or set "
                                      "CENTRAL_ENROLLMENT_TOKEN to register this node")
        body = {"enrollment_token": self.enrollment_token, "name": self.node_name,
                "hostname": self.hostname[:255], "registration_id": registration_id}
        body.update(self._register_extra)
        sent_config = False
        if self.send_config_at_registration:
            # Sent as text: the server parses and validates the YAML, so no YAML library is needed here.
            try:
                with open(self.local_config_path, encoding="utf-8") as handle:
                    text = handle.read()
                if text.strip():
                    body["config"] = text
                    sent_config = True
            except FileNotFoundError:
                pass
            except OSError as error:
                self._error("reading %s" % self.local_config_path, error)
        with self._lock:
            proof = self._node_token or self._last_node_token
        status, parsed, _ = self._http("POST", "/register", body, proof)
        if status == 422 and sent_config and any(
                d.get("field") == "config" or str(d.get("field", "")).startswith("config.")
                for d in _details(parsed)):
            # The server refuses our config.yaml; register without it rather than not at all.
            self._error("register", _refusal(status, parsed, "the server refused config.yaml; registering without it"))
            del body["config"]
            sent_config = False
            status, parsed, _ = self._http("POST", "/register", body, proof)
        if status == 409 and isinstance(parsed, dict) and (parsed.get("error") or {}).get("code") == "node_name_taken":
            with self._lock:
                self._stats["name_taken"] += 1
            raise _refusal(status, parsed, "node name %r is registered to a node this agent could not prove it is; "
                                           "not taking it over. Waiting for an operator's re-enrollment token "
                                           "(set_enrollment_token or CENTRAL_ENROLLMENT_TOKEN)" % self.node_name)
        if status == 409:
            self._decommissioned = True
            raise _Decommissioned(str(_refusal(status, parsed, "this node name is decommissioned")), 409)
        if status not in (200, 201):
            raise _refusal(status, parsed, "registration refused")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("node_id"), str) or not isinstance(
                parsed.get("node_token"), str):
            raise CentralRequestError("registration answer lacks node_id/node_token", status)
        with self._lock:
            reason = "reenroll" if self._stats["registrations"] > 0 or self.applied_config_hash else "initial"
            self.node_id = parsed["node_id"]
            self._node_token = parsed["node_token"]
            self._last_node_token = parsed["node_token"]
            self._stats["registrations"] += 1
            interval = parsed.get("heartbeat_interval_s")
            if self._heartbeat_override is None and isinstance(interval, (int, float)) and interval > 0:
                self.heartbeat_interval = float(interval)
            config = parsed.get("config")
            # A new node whose config.yaml became version 1: the file already holds that config.
            if status == 201 and sent_config and isinstance(config, dict) and self.applied_config_hash is None:
                self.applied_config_hash = config.get("hash")
                self._seen_hash = self.applied_config_hash
                self._pending_ack = self.applied_config_hash
        self._save_state()
        self._registered.set()
        self._emit("registered", {"node_id": self.node_id, "node_name": self.node_name,
                                  "created": status == 201, "reason": reason})
        return True

    # ---- heartbeats -------------------------------------------------------------------------------------

    def _heartbeat_loop(self):
        while not self._stop_event.is_set() and not self._decommissioned:
            try:
                self._heartbeat_once()
            except _Stopped:
                return
            except _Decommissioned as error:
                self._error("heartbeat", error)
                return
            except Exception as error:  # noqa: BLE001 - reported, then retried on the next beat
                if self._stop_event.is_set():
                    return
                self._error("heartbeat", error)
            if self._stop_event.wait(self.heartbeat_interval * random.uniform(0.9, 1.1)):
                return

    def _heartbeat_once(self):
        body = {
            "status": "ok",
            "uptime_s": int(time.monotonic() - self._started_at),
            "applied_config_hash": self.applied_config_hash,
        }
        if self.agent_version:
            body["agent_version"] = self.agent_version
        if self.address:
            body["address"] = self.address
        with self._lock:
            if self._last_counts:
                body["pools"] = [{"instance_pool_id": pool, "instance_count": n}
                                 for pool, n in self._last_counts.items()]
        status, parsed, _ = self._node_call("POST", "/heartbeat", body)
        if status != 200:
            raise _refusal(status, parsed, "heartbeat refused")
        parsed = parsed if isinstance(parsed, dict) else {}
        with self._lock:
            self._stats["heartbeats"] += 1
        interval = parsed.get("heartbeat_interval_s")
        if self._heartbeat_override is None and isinstance(interval, (int, float)) and interval > 0:
            self.heartbeat_interval = float(interval)
        self._emit("heartbeat", {"desired_config_hash": parsed.get("desired_config_hash"),
                                 "heartbeat_interval_s": interval,
                                 "config_changed": parsed.get("config_changed") is True})

    # ---- config -----------------------------------------------------------------------------------------

    def _config_loop(self):
        failures = 0
        while not self._stop_event.is_set() and not self._decommissioned:
            began = time.monotonic()
            try:
                self._ensure_registered()  # registration may adopt config.yaml as the known version
                if self._pending_ack:
                    pending, self._pending_ack = self._pending_ack, None
                    self._ack(pending, None)
                headers = {"If-None-Match": '"%s"' % self._seen_hash} if self._seen_hash else None
                status, parsed, _ = self._node_call("GET", "/config?wait=%d" % self.config_wait, None, headers,
                                                    timeout=self.config_wait + self.request_timeout)
                if self._stop_event.is_set():
                    return  # a late answer after stop() must not write files
                if status == 200:
                    failures = 0
                    self._apply_config(parsed)
                    continue
                if status not in (304, 204):
                    raise _refusal(status, parsed, "config request refused")
                failures = 0
                # A server that answers at once without waiting must not make this loop spin.
                if self.config_wait > 0 and time.monotonic() - began < 0.5:
                    if self._stop_event.wait(1.0):
                        return
            except _Stopped:
                return
            except _Decommissioned as error:
                self._error("config", error)
                return
            except Exception as error:  # noqa: BLE001 - reported, then retried with backoff
                if self._stop_event.is_set():
                    return  # the long-poll outlived stop(): nothing to report
                self._error("config", error)
                if self._stop_event.wait(self._backoff(failures)):
                    return
                failures += 1

    def _apply_config(self, config):
        if not isinstance(config, dict) or not isinstance(config.get("hash"), str) or not isinstance(
                config.get("body"), dict):
            raise CentralRequestError("config answer lacks hash/body")
        hash_, version, body = config["hash"], config.get("version"), config["body"]
        self._seen_hash = hash_
        if hash_ == self.applied_config_hash:  # already running it: nothing to write, confirm only
            self._ack(hash_, None)
            return
        failure = None
        # The server sends the text the operator wrote; older servers send only the body, rendered here.
        text = config.get("yaml")
        if not isinstance(text, str):
            text = to_yaml(body, ["Managed by Autoscaler Central: version %s, hash %s." % (version, hash_[:12]),
                                  "Local edits are replaced when the server's config changes; edit it there."])
        try:
            write_atomic(self.local_config_path, text, backup_path=self.local_config_path + ".bak")
        except OSError as error:
            failure = "could not write %s: %s" % (self.local_config_path, error)
        if failure is None and self.on_config is not None:
            try:
                self.on_config({"version": version, "hash": hash_, "body": body, "yaml": text})
            except Exception as error:  # noqa: BLE001 - the agent refused it: ack failed with its words
                failure = str(error) or type(error).__name__
        with self._lock:
            if failure is None:
                self.applied_config_hash = hash_
                self._stats["configs_applied"] += 1
            else:
                self._stats["configs_failed"] += 1
        if failure is None:
            self._save_state()
        else:
            self._error("config", CentralRequestError("config %s not applied: %s" % (hash_[:12], failure)))
        self._emit("config", {"hash": hash_, "version": version,
                              "status": "applied" if failure is None else "failed", "error": failure})
        self._ack(hash_, failure)

    def _ack(self, hash_, failure):
        body = {"hash": hash_, "status": "applied"} if failure is None else {
            "hash": hash_, "status": "failed", "error": failure[:2000]}
        for attempt in range(5):
            try:
                status, parsed, _ = self._node_call("POST", "/config/ack", body)
                if status == 200:
                    return
                error = _refusal(status, parsed, "config ack refused")
                self._error("config ack", error)
                if status < 500 and status != 429:
                    return
            except (_Stopped, _Decommissioned):
                return
            except CentralRequestError as error:
                self._error("config ack", error)
            if self._stop_event.wait(self._backoff(attempt)):
                return

    # ---- metrics ----------------------------------------------------------------------------------------

    def _sender_loop(self):
        failures = 0
        while True:
            with self._lock:
                while True:
                    if self._stopping and (not self._buffer or time.monotonic() >= self._deadline):
                        return
                    if self._decommissioned:
                        return
                    if not self._buffer:
                        self._wake_sender.wait(1.0)
                        continue
                    if not self._stopping and len(self._buffer) < self.batch_size:
                        due = self._first_buffered_at + self.flush_interval - time.monotonic()
                        if due > 0:
                            self._wake_sender.wait(due)
                            continue
                    break
                batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
                self._in_flight = batch
            try:
                outcome = self._send_batch(batch)
            except _Stopped:
                outcome = "retry"
            except _Decommissioned as error:
                self._error("metrics", error)
                outcome = "retry"
            except Exception as error:  # noqa: BLE001 - kept and retried with backoff
                self._error("metrics", error)
                outcome = "retry"
            with self._lock:
                self._in_flight = []
                if outcome == "retry":
                    self._buffer.extendleft(reversed(batch))
                if self._buffer:
                    self._first_buffered_at = min(self._first_buffered_at, time.monotonic())
            if outcome == "retry":
                try:
                    self._pause(self._backoff(failures))
                except _Stopped:
                    return
                failures += 1
            else:
                failures = 0

    def _send_batch(self, batch):
        samples = batch
        for round_ in (0, 1):
            status, parsed, _ = self._node_call("POST", "/metrics", {"samples": samples})
            if status == 200:
                parsed = parsed if isinstance(parsed, dict) else {}
                accepted = int(parsed.get("accepted", len(samples)))
                duplicates = int(parsed.get("duplicates", 0))
                with self._lock:
                    self._stats["accepted"] += accepted
                    self._stats["duplicates"] += duplicates
                    self._stats["sent"] += accepted + duplicates
                self._drop(len(batch) - len(samples), "rejected")
                return "sent"
            if status == 413:
                # Too large for the server's body limit: send smaller batches from now on.
                if self.batch_size > 1:
                    self.batch_size = max(1, min(self.batch_size, len(samples)) // 2)
                    self._error("metrics", _refusal(status, parsed, "batch too large; batch size now %d"
                                                    % self.batch_size))
                    if samples is batch:
                        return "retry"
                    self._drop(len(batch) - len(samples), "rejected")
                    return "done"
                self._error("metrics", _refusal(status, parsed, "a single sample is too large; dropped"))
                break
            if status == 422 and round_ == 0:
                # Drop only the samples the server names, then send the rest once more.
                bad = set()
                for detail in _details(parsed):
                    match = re.match(r"^samples\.(\d+)(?:\.|$)", str(detail.get("field", "")))
                    if match:
                        bad.add(int(match.group(1)))
                self._error("metrics", _refusal(status, parsed, "samples refused (%s); dropped"
                                                % (len(bad) or "all")))
                if not bad or len(bad) >= len(samples):
                    break
                samples = [s for i, s in enumerate(samples) if i not in bad]
                continue
            # Only a 422 judges the samples; anything else is kept and sent again: 400 means the server could
            # not read the body (this client always sends valid JSON; a server shutting down answers so),
            # 401/403/404 that survived a re-enrollment are the node's trouble, 429 and 5xx the server's.
            if status == 422:
                self._error("metrics", _refusal(status, parsed, "batch refused; dropped"))
                break
            raise _refusal(status, parsed, "metrics not accepted; will retry")
        self._drop(len(batch), "rejected")
        return "done"
