"""The typed references workflows call stay in step with the activities workers run."""

import inspect
from typing import get_type_hints

import pytest
from temporalio import activity

from magsag.activities.registry import ALL_ACTIVITIES
from magsag.contracts import activity_stubs

STUBS = [
    value
    for value in vars(activity_stubs).values()
    if callable(value) and activity._Definition.from_callable(value) is not None
]
IMPLEMENTED = {activity._Definition.must_from_callable(fn).name: fn for fn in ALL_ACTIVITIES}


def test_every_activity_a_worker_runs_has_a_stub_and_the_other_way_round():
    names = {activity._Definition.must_from_callable(stub).name for stub in STUBS}
    assert names == set(IMPLEMENTED)


@pytest.mark.parametrize("stub", STUBS, ids=lambda stub: stub.__name__)
def test_a_stub_takes_and_returns_what_its_implementation_does(stub):
    name = activity._Definition.must_from_callable(stub).name
    implementation = IMPLEMENTED[name]
    assert list(get_type_hints(stub).values()) == list(get_type_hints(implementation).values())
    assert len(inspect.signature(stub).parameters) == len(
        inspect.signature(implementation).parameters
    )
