"""Register the pipeline flow as a scheduled Prefect deployment on a process work pool.

    prefect server start                          # terminal 1 (UI at http://127.0.0.1:4200)
    python -m flows.deploy                        # creates the pool and the nightly deployment
    prefect worker start --pool s2sflow-process   # terminal 2: runs the scheduled flow runs

The deployment runs the code in this folder (no image, no remote storage): the worker's machine must
see the project at the same path. `make deploy` / `make worker` wrap these commands.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def ensure_work_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async with get_client() as client:
        try:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            print(f"created work pool '{name}' (process)")
        except ObjectAlreadyExists:
            print(f"work pool '{name}' exists")


def deploy(name: str, pool: str, cron: str | None, tasks: list[str] | None, root: Path = ROOT) -> str:
    from prefect import flow

    asyncio.run(ensure_work_pool(pool))
    remote = flow.from_source(source=str(root), entrypoint="flows/pipeline.py:pipeline")
    parameters = {"root": str(root)}
    if tasks:
        parameters["tasks"] = tasks
    deployment_id = remote.deploy(name=name, work_pool_name=pool, cron=cron, parameters=parameters,
                                  description="s2sflow: DVC stages of every task (flows/pipeline.py)",
                                  tags=["s2sflow"], print_next_steps=False)
    print(f"deployment 's2sflow-pipeline/{name}' ({deployment_id}) on pool '{pool}'"
          + (f", schedule '{cron}'" if cron else ""))
    return str(deployment_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="nightly", help="deployment name (default: nightly)")
    parser.add_argument("--pool", default="s2sflow-process", help="process work pool (created if missing)")
    parser.add_argument("--cron", default="0 2 * * *", help="cron schedule, UTC (default: 02:00 daily; '' for none)")
    parser.add_argument("--tasks", help="comma-separated task ids (default: params.yaml pipeline.tasks)")
    args = parser.parse_args(argv)
    tasks = [t for t in (args.tasks or "").split(",") if t] or None
    deploy(args.name, args.pool, args.cron or None, tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
