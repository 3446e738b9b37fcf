"""The data plane: what runs when a deployed API is called or a function is invoked.

Lambda. A function version runs as its real `bootstrap`, unpacked from the zip the emulator holds
for that version, polling a Lambda Runtime API (one per instance, on loopback) for its events, with
that version's environment variables and timeout and the variables Lambda sets. Instances are
started on demand, kept while warm and reused; one instance serves one invocation at a time, so
concurrent invocations start more instances, as Lambda does. An alias routes by its weights.

API Gateway. A request to `/restapis/<api>/<stage>/_user_request_/<path>` is routed by the REST API
as the emulator holds it (resources, methods, integrations), to the Lambda function the AWS_PROXY
integration's URI names, with the REST proxy event API Gateway sends. A function error, a crash
or a malformed answer is 502 `{"message": "Internal server error"}`; an answer slower than the
integration's timeout (29 s by default) is 504 `{"message": "Endpoint request timed out"}`; an
unknown path or method is 403 `{"message": "Missing Authentication Token"}`; a stage's throttling
(its `*/*` method settings: a token bucket of `burstLimit` tokens refilled at `rateLimit` per
second) answers 429 `{"message": "Too Many Requests"}`; a body over 10 MB is 413. A gateway
response the deployer configured (PutGatewayResponse) replaces those answers, as on AWS.

What differs from AWS, all of it here: `instance_environment` points the functions' AWS calls at
the emulator (`AWS_ENDPOINT_URL`) and names its databases' test CA (`DB_EXTRA_ROOT_CERT_FILE`); memory is not enforced; IAM policies (the execution role's and
the functions' resource policies) are not checked; a stage serves the API's current resources
rather than a snapshot taken by its deployment."""

from __future__ import annotations

import atexit
import base64
import dataclasses
import http.server
import io
import json
import math
import os
import queue
import random
import re
import shutil
import string
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import processes

# Lambda's limits: an instance idle this long is reclaimed; API Gateway's default integration timeout.
IDLE_SECONDS = 300.0
INTEGRATION_TIMEOUT_SECONDS = 29.0
LOG_TAIL_BYTES = 4096
# API Gateway's payload limit, and its account-level throttling where a stage sets none.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
ACCOUNT_RATE, ACCOUNT_BURST = 10000.0, 5000.0

WORK_DIR = tempfile.mkdtemp(prefix="emulator-lambda-")
atexit.register(shutil.rmtree, WORK_DIR, True)

# The emulator's own URL, set at start: where functions send their AWS calls.
EMULATOR_URL = ""
# Set at start: variables naming what only the emulator has (its databases' test CA).
EMULATOR_ENVIRONMENT: dict[str, str] = {}


@dataclasses.dataclass
class Outcome:
    """How an invocation ended: `ok`, `error` (the function reported one), `crash` (the runtime
    exited, or could not start), `timeout`."""

    kind: str
    payload: bytes
    log: str = ""

    def error_payload(self) -> bytes:
        """What Invoke answers: the function's payload, or Lambda's error for what went wrong."""
        if self.kind in ("ok", "error"):
            return self.payload
        if self.kind == "timeout":
            return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"}).encode()
        return json.dumps({"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited: " + self.log[-1000:]}).encode()


def unpacked(function: Any) -> str:
    """The version's zip, extracted once per code SHA-256 (Lambda's /var/task), read-only."""
    key = base64.urlsafe_b64encode(base64.b64decode(function.code_sha_256)).decode().rstrip("=")
    folder = os.path.join(WORK_DIR, "code", key)
    if os.path.isdir(folder):
        return folder
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    staging = tempfile.mkdtemp(dir=WORK_DIR)
    with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
        for entry in archive.infolist():
            path = archive.extract(entry, staging)
            mode = (entry.external_attr >> 16) & 0o777
            os.chmod(path, mode or (0o755 if entry.filename == "bootstrap" else 0o644))
    try:
        os.rename(staging, folder)
    except OSError:  # another instance unpacked the same code first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def instance_environment(function: Any, runtime_api: str, task_root: str) -> dict[str, str]:
    """What Lambda puts in a function's environment, then the function's own variables."""
    region = function.region
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/") + f"[{function.version}]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # The execution role's temporary credentials (the emulator accepts any).
        "AWS_ACCESS_KEY_ID": "ASIAEMULATOR" + "".join(random.choices(string.ascii_uppercase, k=8)),
        "AWS_SECRET_ACCESS_KEY": "emulator",
        "AWS_SESSION_TOKEN": "emulator",
        **(function.environment_vars or {}),
    }
    # The differences from AWS in a function's environment: its AWS calls go to the emulator, and
    # it trusts the test CA of the emulator's databases besides AWS's RDS CAs.
    env["AWS_ENDPOINT_URL"] = EMULATOR_URL
    env.update(EMULATOR_ENVIRONMENT)
    return env


class Instance:
    """One execution environment: a bootstrap process and the Runtime API it polls."""

    def __init__(self, function: Any, invoked_arn: str) -> None:
        self.function = function
        self.invoked_arn = invoked_arn
        self.events: queue.Queue[tuple[str, bytes, int] | None] = queue.Queue()
        self.answers: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
        self.output: list[str] = []
        self.output_lock = threading.Lock()
        self.init_error: bytes | None = None
        self.invoked = False
        self.idle_since = time.monotonic()
        # Lambda's log stream per execution environment: `YYYY/MM/DD/[version]<id>`.
        self.log_stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{function.version}]{uuid.uuid4().hex}"
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), runtime_api_handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        task_root = unpacked(function)
        address = f"127.0.0.1:{self.server.server_address[1]}"
        self.process = processes.spawn(
            [os.path.join(task_root, "bootstrap")],
            env=instance_environment(function, address, task_root),
            cwd=task_root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._read_output, daemon=True).start()

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.output_lock:
                self.output.append(line.decode(errors="replace"))

    def log_since(self, start: int) -> str:
        with self.output_lock:
            return "".join(self.output[start:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, payload: bytes, timeout: float) -> Outcome:
        # The first invocation's log includes the init's, as Lambda's does.
        with self.output_lock:
            start = len(self.output) if self.invoked else 0
        self.invoked = True
        request_id = str(uuid.uuid4())
        deadline_ms = int((time.time() + timeout) * 1000)
        self.events.put((request_id, payload, deadline_ms))
        started = time.monotonic()
        end = started + timeout

        def log(lines: str) -> str:
            # Lambda's platform lines around the function's own, as CloudWatch Logs and a
            # `LogType: Tail` answer show them.
            elapsed_ms = (time.monotonic() - started) * 1000
            return (
                f"START RequestId: {request_id} Version: {self.function.version}\n{lines}"
                f"END RequestId: {request_id}\n"
                f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms\t"
                f"Billed Duration: {math.ceil(elapsed_ms)} ms\tMemory Size: {self.function.memory_size} MB\n"
            )

        while True:
            try:
                answered, kind, body = self.answers.get(timeout=0.05)
            except queue.Empty:
                if not self.alive():
                    time.sleep(0.05)  # let the reader take the last lines
                    return Outcome("crash", b"", log(self.log_since(start) + (self.init_error or b"").decode(errors="replace")))
                if time.monotonic() > end:
                    self.stop()
                    return Outcome("timeout", b"", log(self.log_since(start) + f"Task timed out after {timeout:.2f} seconds\n"))
                continue
            if answered == request_id:
                return Outcome(kind, body, log(self.log_since(start)))

    def stop(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        self.events.put(None)
        self.server.shutdown()
        self.server.server_close()


def runtime_api_handler(instance: Instance) -> type[http.server.BaseHTTPRequestHandler]:
    """Lambda's Runtime API (2018-06-01) for one instance: next, response, error, init error."""

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path != "/2018-06-01/runtime/invocation/next":
                return self._answer(404)
            event = instance.events.get()
            if event is None:
                return self._answer(410)
            request_id, payload, deadline_ms = event
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", instance.invoked_arn)
            self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.removeprefix("/2018-06-01/runtime/").split("/")
            if parts == ["init", "error"]:
                instance.init_error = body
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                instance.answers.put((parts[1], "ok" if parts[2] == "response" else "error", body))
            else:
                return self._answer(404)
            self._answer(202)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return RuntimeApi


# Warm instances by (function ARN with version, code, configuration).
WARM: dict[tuple, list[Instance]] = {}
WARM_LOCK = threading.Lock()


def warm_key(function: Any) -> tuple:
    config = json.dumps([function.environment_vars, function.memory_size, function.timeout], sort_keys=True)
    return (function.function_arn, function.code_sha_256, config)


def take_instance(function: Any, invoked_arn: str) -> Instance:
    now = time.monotonic()
    with WARM_LOCK:
        for key, idle in list(WARM.items()):
            keep = [i for i in idle if now - i.idle_since < IDLE_SECONDS and i.alive()]
            for reclaimed in set(idle) - set(keep):
                threading.Thread(target=reclaimed.stop, daemon=True).start()
            WARM[key] = keep
        idle = WARM.get(warm_key(function), [])
        if idle:
            instance = idle.pop()
            instance.invoked_arn = invoked_arn
            return instance
    return Instance(function, invoked_arn)


def invoke(function: Any, invoked_arn: str, payload: bytes, timeout: float | None = None) -> Outcome:
    """Runs one invocation of a function version on a warm or new instance."""
    try:
        instance = take_instance(function, invoked_arn)
    except (OSError, zipfile.BadZipFile) as error:  # no bootstrap, not executable, not a zip
        return Outcome("crash", b"", f"cannot start the runtime: {error}")
    limit = float(function.timeout) if timeout is None else min(timeout, float(function.timeout))
    outcome = instance.invoke(payload, limit)
    record_log(function, instance.log_stream, outcome.log)
    if outcome.kind in ("ok", "error") and instance.alive():
        instance.idle_since = time.monotonic()
        with WARM_LOCK:
            WARM.setdefault(warm_key(function), []).append(instance)
    else:
        instance.stop()
    return outcome


LOG_LOCK = threading.Lock()


def record_log(function: Any, stream: str, log: str) -> None:
    """What Lambda does with an invocation's output: one event per line in the function's log
    group, `/aws/lambda/<name>`, created on first use (as AWSLambdaBasicExecutionRole allows)."""
    from moto.logs.models import logs_backends  # noqa: PLC0415 - moto is loaded by the emulator

    backend = logs_backends[function.account_id][function.region]
    group = f"/aws/lambda/{function.function_name}"
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in log.splitlines() if line.strip()]
    with LOG_LOCK:  # moto's log store is not safe for concurrent writers
        if group not in backend.groups:
            backend.create_log_group(group, {})
        backend.ensure_log_stream(group, stream)
        if events:
            backend.put_log_events(group, stream, events)


@atexit.register
def stop_all() -> None:
    with WARM_LOCK:
        instances = [i for idle in WARM.values() for i in idle]
        WARM.clear()
    for instance in instances:
        instance.stop()


# --- Lambda's routing -------------------------------------------------------------------------------


def resolve(backend: Any, name_or_arn: str, qualifier: str | None) -> tuple[Any, str]:
    """The function version an invocation runs, and the ARN it was invoked by. An alias picks among
    its versions by its routing weights, per invocation, as Lambda does."""
    name = name_or_arn
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        name = parts[6]
        qualifier = parts[7] if len(parts) > 7 else qualifier
    version = qualifier or "$LATEST"
    if version != "$LATEST" and not version.isdigit():
        alias = backend.get_alias(version, name)
        version = weighted_version(alias.function_version, alias.routing_config)
    function = backend.get_function(name, version)
    invoked = f"arn:aws:lambda:{function.region}:{function.account_id}:function:{name}"
    return function, invoked + (f":{qualifier}" if qualifier else "")


def weighted_version(primary: str, routing_config: Any) -> str:
    weights = (routing_config or {}).get("AdditionalVersionWeights") or {}
    draw = random.random()
    for version, weight in weights.items():
        draw -= float(weight)
        if draw < 0:
            return str(version)
    return primary


# --- API Gateway ------------------------------------------------------------------------------------

STAGE_PATH = re.compile(r"^/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$")
LAMBDA_URI = re.compile(r"^arn:[^:]+:apigateway:[^:]+:lambda:path/2015-03-31/functions/(?P<function>.+)/invocations$")


@dataclasses.dataclass
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def match_template(template: list[str], segments: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """Whether a resource path's segments match a request path's: None, or (score, parameters).
    A literal segment scores over a `{param}`, which scores over a greedy `{param+}`."""
    params: dict[str, str] = {}
    score: list[int] = []
    for index, part in enumerate(template):
        if part.startswith("{") and part.endswith("+}"):
            if index >= len(segments):
                return None
            params[part[1:-2]] = "/".join(segments[index:])
            return tuple(score + [0]), params
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segments[index]
            score.append(1)
        elif part == segments[index]:
            score.append(2)
        else:
            return None
    return (tuple(score), params) if len(template) == len(segments) else None


def match_resource(api: Any, path: str) -> tuple[Any, dict[str, str]] | None:
    """The API's resource for a request path, the best-scoring one, and its path parameters."""
    segments = [s for s in path.split("/") if s]
    best: tuple[tuple[int, ...], Any, dict[str, str]] | None = None
    for resource in api.resources.values():
        matched = match_template([s for s in resource.get_path().split("/") if s], segments)
        if matched is not None and (best is None or matched[0] > best[0]):
            best = (matched[0], resource, matched[1])
    return None if best is None else (best[1], best[2])


def proxy_event(method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes,
                resource_path: str, params: dict[str, str], api_id: str, stage: str, account: str,
                request_id: str, source_ip: str) -> bytes:
    """The REST (v1) proxy event API Gateway sends to a Lambda proxy integration."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    pairs = parse_qsl(query, keep_blank_values=True)
    query_single = {k: v for k, v in pairs}
    query_multi: dict[str, list[str]] = {}
    for k, v in pairs:
        query_multi.setdefault(k, []).append(v)
    try:
        text, is_base64 = (body.decode() if body else None), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    now = time.time()
    event = {
        "resource": resource_path,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": query_single or None,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "emulator",
            "resourcePath": resource_path,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{path}",
            "accountId": account,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": api_id,
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent") or single.get("user-agent")},
            "domainName": f"{api_id}.execute-api.emulator",
            "apiId": api_id,
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }
    return json.dumps(event).encode()


def gateway_error(api: Any, kind: str, status: int, message: str, request_id: str) -> HttpAnswer:
    """API Gateway's own answer, or the gateway response the deployer configured for it."""
    defaults = {"MISSING_AUTHENTICATION_TOKEN": "DEFAULT_4XX", "API_CONFIGURATION_ERROR": "DEFAULT_5XX",
                "INTEGRATION_TIMEOUT": "DEFAULT_5XX", "REQUEST_TOO_LARGE": "DEFAULT_4XX",
                "THROTTLED": "DEFAULT_4XX", "AUTHORIZER_FAILURE": "DEFAULT_5XX"}
    configured = getattr(api, "gateway_responses", None) or {}
    response = configured.get(kind) or configured.get(defaults.get(kind, ""))
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", kind)]
    body = json.dumps({"message": message}).encode()
    if response is not None:
        status = int(response.status_code or status)
        for name, value in (response.response_parameters or {}).items():
            if name.startswith("gatewayresponse.header."):
                headers.append((name.removeprefix("gatewayresponse.header."), value.strip("'")))
        template = (response.response_templates or {}).get("application/json")
        if template is not None:
            text = template.replace("$context.requestId", request_id)
            text = text.replace("$context.error.messageString", json.dumps(message))
            text = text.replace("$context.error.message", message)
            body = text.encode()
    return HttpAnswer(status, headers, body)


@dataclasses.dataclass
class Bucket:
    """A stage's token bucket: `tokens` left at `at` (monotonic seconds)."""

    tokens: float
    at: float


BUCKETS: dict[tuple[str, str], Bucket] = {}
BUCKETS_LOCK = threading.Lock()


def admitted(api_id: str, stage_name: str, stage: Any) -> bool:
    """Whether the stage's throttling lets one more request through now (and takes its token)."""
    settings = (getattr(stage, "method_settings", None) or {}).get("*/*") or {}
    rate = float(settings.get("throttlingRateLimit", ACCOUNT_RATE))
    burst = float(settings.get("throttlingBurstLimit", ACCOUNT_BURST))
    now = time.monotonic()
    with BUCKETS_LOCK:
        bucket = BUCKETS.setdefault((api_id, stage_name), Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


def serve_stage(apigateway: Any, lambda_backend: Callable[[str, str], Any], api_id: str, stage: str,
                method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes,
                source_ip: str) -> HttpAnswer:
    request_id = str(uuid.uuid4())
    try:
        api = apigateway.get_rest_api(api_id)
    except Exception:  # noqa: BLE001 - moto's not-found
        return HttpAnswer(404, [("Content-Type", "application/json")], b'{"message":"Not Found"}')
    if stage not in api.stages:
        return gateway_error(api, "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token", request_id)
    if not admitted(api_id, stage, api.stages[stage]):
        return gateway_error(api, "THROTTLED", 429, "Too Many Requests", request_id)
    if len(body) > MAX_PAYLOAD_BYTES:
        return gateway_error(api, "REQUEST_TOO_LARGE", 413, "Request Too Long", request_id)
    found = match_resource(api, path)
    methods = found[0].resource_methods if found else {}
    chosen = methods.get(method) or methods.get("ANY")
    if found is None or chosen is None:
        return gateway_error(api, "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token", request_id)
    resource, params = found
    integration = chosen.method_integration
    target = LAMBDA_URI.match(getattr(integration, "uri", "") or "")
    if integration is None or integration.integration_type != "AWS_PROXY" or target is None:
        return gateway_error(api, "API_CONFIGURATION_ERROR", 500, "Internal server error", request_id)
    function_arn = target.group("function")
    region, account = function_arn.split(":")[3], function_arn.split(":")[4]
    backend = lambda_backend(account, region)
    try:
        function, invoked = resolve(backend, function_arn, None)
    except Exception:  # noqa: BLE001 - a missing function or alias: API Gateway logs it and answers 500
        return gateway_error(api, "DEFAULT_5XX", 500, "Internal server error", request_id)
    event = proxy_event(method, path, query, headers, body, resource.get_path(), params, api_id, stage,
                        account, request_id, source_ip)
    timeout = (getattr(integration, "timeout_in_millis", None) or INTEGRATION_TIMEOUT_SECONDS * 1000) / 1000
    outcome = invoke(function, invoked, event, timeout=float(timeout))
    if outcome.kind == "timeout" and float(timeout) < float(function.timeout):
        return gateway_error(api, "INTEGRATION_TIMEOUT", 504, "Endpoint request timed out", request_id)
    if outcome.kind != "ok":
        return gateway_error(api, "DEFAULT_5XX", 502, "Internal server error", request_id)
    return proxy_answer(api, outcome.payload, request_id)


def proxy_answer(api: Any, payload: bytes, request_id: str) -> HttpAnswer:
    """The HTTP answer from a proxy integration's result; anything else is 502, as on AWS."""
    try:
        result = json.loads(payload)
        status = int(result.get("statusCode"))
        headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(v)) for v in values)
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    except (ValueError, TypeError, AttributeError):
        return gateway_error(api, "DEFAULT_5XX", 502, "Internal server error", request_id)
    headers.append(("x-amzn-RequestId", request_id))
    return HttpAnswer(status, headers, data)


def stage_request(environ: dict) -> tuple[str, str, str] | None:
    """(api id, stage, path) when a WSGI request is for a deployed stage."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    match = STAGE_PATH.match(urlsplit(raw).path)
    if match is None:
        return None
    return match.group("api"), match.group("stage"), match.group("path") or "/"
