"""SYNTHETIC markets: a generator with a signal knob (:mod:`.generator`) and a sweep over it (:mod:`.sweep`).

Nothing here measures real agents; it checks that the harness can tell signal from none.
"""
