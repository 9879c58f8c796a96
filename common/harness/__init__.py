"""The process harness: start a process (a Procfile line or any command), wait until it
answers, stop it; free ports; throw-away databases; the stack's services on them.

The launcher (common/devstack.py), the tests (tests/support/), the benchmarks (bench/)
and the load test (loadtest/) start their processes here, and only here.
"""
