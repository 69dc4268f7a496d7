"""The composition root: clients built once, with what they need handed in; tables and queues made in one
explicit step, never by a getter; every adapter's failure one typed error."""

from __future__ import annotations

import os
import uuid

import pytest
from conftest import fixture

from deskbridge import doctor, errors
from deskbridge.desks.callback import CallbackError
from deskbridge.desks.jira_client import JiraError
from deskbridge.desks.servicenow_client import ServiceNowError
from deskbridge.errors import RemoteError, StorageError
from deskbridge.point import PointError, TokenError
from deskbridge.runtime import Runtime
from deskbridge.secrets import SecretUnavailable
from deskbridge.settings import Settings


def fresh_names() -> dict[str, str]:
    """Tables and queues nobody has made."""
    tag = uuid.uuid4().hex[:8]
    return {
        "BRIDGE_LEDGER_TABLE": f"fresh{tag}",
        "BRIDGE_DELIVERIES_TABLE": f"freshdeliveries{tag}",
        "BRIDGE_RETRY_QUEUE": f"fresh-retries-{tag}",
        "BRIDGE_RETRY_POISON_QUEUE": f"fresh-retries-{tag}-poison",
        "BRIDGE_DESK_QUEUE": f"fresh-desk-{tag}",
        "BRIDGE_DESK_POISON_QUEUE": f"fresh-desk-{tag}-poison",
    }


def test_a_getter_makes_nothing_a_missing_table_says_so_and_doctor_makes_them(bridge):
    names = fresh_names()
    runtime = Runtime(Settings(bridge.settings | names))
    ledger, queue = runtime.ledger, runtime.retry_queue  # built: no call made, nothing created
    with pytest.raises(StorageError) as missing:
        ledger.get("jira", "HR-1")
    assert missing.value.missing == names["BRIDGE_LEDGER_TABLE"] and "python -m deskbridge doctor" in str(missing.value)
    with pytest.raises(StorageError) as no_queue:
        queue.depth()
    assert no_queue.value.missing == names["BRIDGE_RETRY_QUEUE"]
    assert bridge.queue_count(names["BRIDGE_RETRY_QUEUE"]) == 0

    [storage] = [o for o in doctor.run_checks(runtime) if o.name == "storage"]
    assert storage.state == "ok", storage
    assert f"created {names['BRIDGE_LEDGER_TABLE']}, {names['BRIDGE_DELIVERIES_TABLE']}, " in storage.message
    assert names["BRIDGE_DESK_POISON_QUEUE"] in storage.message
    assert ledger.get("jira", "HR-1") is None and queue.depth() == (0, 0)
    again = Runtime(Settings(bridge.settings | names)).ensure_storage()
    assert again.created == () and again.tables == (names["BRIDGE_LEDGER_TABLE"], names["BRIDGE_DELIVERIES_TABLE"])


def test_an_approval_against_a_missing_table_is_a_503_naming_storage(bridge):
    from deskbridge import runtime as runtimes

    bridge.settings.update(fresh_names())
    bridge.runtime = runtimes.reset(bridge.settings, bridge.clock)  # a new worker; nobody made these
    status, body = bridge.http("provision", fixture("syskit_jira_custom_body.json"))
    assert status == 503 and body["errors"][0]["field"] == "storage", body
    assert "Azure Storage is unavailable (ResourceNotFoundError)" in body["errors"][0]["message"]
    assert len(bridge.stack.point.provision_calls()) == 0


def test_built_says_whether_a_client_exists_without_building_it(bridge):
    runtime = bridge.runtime
    assert runtime.built("secrets") is False
    runtime.secrets.get("point-client-secret")
    assert runtime.built("secrets") is True
    runtime.forget("secrets")
    assert runtime.built("secrets") is False
    with pytest.raises(AttributeError):
        runtime.built("settings")  # not a client the runtime builds


def test_key_vault_reads_do_not_depend_on_the_syskit_point_settings(bridge):
    bridge.configure(POINT_READ_TIMEOUT_SECONDS="soon")  # a Syskit Point setting gone wrong
    assert bridge.runtime.secrets.value("point-client-secret")  # Key Vault still reads


def test_the_point_session_is_built_with_its_trust_settings(bridge):
    session = bridge.runtime.point.session
    # The stack's CA bundle, read from the environment once and handed to the session when it was made.
    assert (session.trust_env, session.verify) == (False, os.environ["REQUESTS_CA_BUNDLE"])


def test_every_adapter_failure_is_one_remote_error_type():
    for kind in (SecretUnavailable, TokenError, PointError, StorageError, JiraError, ServiceNowError, CallbackError):
        assert issubclass(kind, RemoteError) and kind.__module__ == errors.__name__
    failure = PointError("Syskit Point answered 429", 429)
    assert (failure.transient, failure.http_status) == (True, 429)
    assert PointError("Syskit Point answered 403", 403).transient is False
    assert TokenError("no route to Entra ID", "transient").transient is True
    assert TokenError("the client secret has expired", "invalid_client").transient is False


def test_a_desk_answer_becomes_a_typed_error_with_its_status(bridge):
    bridge.stack.jira.fail_next(1, 503, method="POST")
    jira = bridge.runtime.jira
    with pytest.raises(JiraError) as unavailable:
        jira.comment("HR-42", "text", internal=False, marker="pdb-0000000000000000")
    assert (unavailable.value.transient, unavailable.value.http_status) == (True, 503)
    bridge.stack.jira.fail_next(1, 404, method="POST")
    with pytest.raises(JiraError) as missing:
        jira.comment("HR-42", "text", internal=False, marker="pdb-0000000000000000")
    assert (missing.value.transient, missing.value.http_status) == (False, 404)
