"""Data-parallel training: DDP strategies that tolerate parameters without gradients."""

from __future__ import annotations


def ddp_strategy(strategy):
    """A DDP strategy name as a strategy that finds unused parameters (each stage trains only some networks)."""
    if not isinstance(strategy, str) or not strategy.startswith("ddp") or "find_unused" in strategy:
        return strategy
    from lightning.pytorch.strategies import DDPStrategy

    start_method = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}.get(strategy)
    if start_method is None:
        return strategy
    return DDPStrategy(find_unused_parameters=True, start_method=start_method)
