# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out/demo
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast lint bench bench-lerobot clean

venv:
	@VENV=$(VENV) scripts/bootstrap.sh

demo: venv
	$(PY) -m robot_memory.cli demo --output $(OUT)

# The whole suite on two pytest-xdist workers; the tests that start whole
# stacks share one xdist group and run one after the other (test/conftest.py).
test: venv
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# The inner loop: everything but the multi-process ROS stacks and the slow
# closed-loop runs, on two workers (~1.5 min on 2 cores). CI runs `make test`.
test-fast: venv
	$(PY) -m pytest -n 2 --dist loadgroup -m "not ros and not slow" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports --no-logo

bench: venv
	$(PY) bench/bench_sim.py --output out/bench
	$(PY) bench/bench_perception.py --out out/bench/bench_perception.json
	$(PY) bench/bench_perception.py --setting realistic --out out/bench/bench_perception_realistic.json
	$(PY) bench/bench_sensor_rate.py --out out/bench/bench_sensor_rate.json
	$(PY) bench/bench_memory.py --out out/bench/bench_memory.json
	$(PY) bench/bench_memory_scale.py --out out/bench/bench_memory_scale.json
	$(PY) bench/bench_policy.py --out out/bench/bench_policy.json
	@if [ -x $${LEROBOT_VENV:-out/lerobot-venv}/bin/python ]; then scripts/bench_lerobot.sh --out out/bench/bench_policy_lerobot.json; \
	else echo "[bench] LeRobot's own DiffusionPolicy: no peer venv; make bench-lerobot sets it up and runs it"; fi
	$(PY) bench/bench_week.py --out out/bench/bench_week.json
	$(PY) bench/bench_replay_eval.py --output out/bench
	$(PY) bench/bench_ray_eval.py --out out/bench/bench_ray_eval.json

# The policy chunk against LeRobot's own DiffusionPolicy, in a venv of its own
# (LeRobot pins an older torch): out/lerobot-venv, out/bench/bench_policy_lerobot.json
bench-lerobot:
	scripts/bench_lerobot.sh --out out/bench/bench_policy_lerobot.json

clean:
	rm -rf out build install log .pytest_cache
