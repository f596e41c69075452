"""A GoAPI-compatible Midjourney upstream that runs offline (docs/emulator.md).

`emulator.app.create_app(config)` builds the Starlette app; `emulator.cli.main` serves it.
Nothing happens at import time. Module map:

- facts, modes: GoAPI's facts (task types, plans, costs) and the requested mode, the emulator's
  own: nothing here imports mjgate's routing or gateway packages
- config: EmulatorConfig, EmulatedAccountSpec, DEMO_ACCOUNTS, account files
- durations: how long each task holds its slot (fixed, per task, realistic; scale, spread, seed)
- errors, responses: the exception tree and the GoAPI envelope it becomes
- validation: create requests against GoAPI's documented task types
- tasks, outputs, images: the task object, per-type outputs, the PNG their URLs serve
- accounts, placement, pool: HYA accounts, where a task runs, operator actions on accounts
- engine, timeline: the state machine and its clock-driven transitions
- faults, webhooks: injected faults; ordered, retried deliveries owned by the lifespan
- api, control, app, cli: GoAPI routes, /_emulator routes, the factory, the command
"""
