"""parse() pauses the cyclic collector and moves the module to the oldest
generation; it must leave the collector as it found it and never thaw
objects someone else froze."""

import gc

from tatara_build.frontend import parse

from .helpers import program

TEXT = program("(return :xdp-pass)")


def test_collector_state_is_restored():
    was = gc.isenabled()
    try:
        gc.enable()
        parse(TEXT)
        assert gc.isenabled()
        gc.disable()
        parse(TEXT)
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_module_starts_in_the_oldest_generation():
    module = parse(TEXT)
    oldest = {id(o) for o in gc.get_objects(2)}
    assert id(module) in oldest and id(module.functions[0].body[0]) in oldest
    assert gc.get_count()[0] < 700  # no collection pending for the module's objects


def test_frozen_objects_stay_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        parse(TEXT)
        assert gc.get_freeze_count() >= frozen > 0
    finally:
        gc.unfreeze()
