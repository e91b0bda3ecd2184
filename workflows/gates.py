"""Approval gates of a run: which wait, which are decided, and what a decision is for.

Pure, deterministic state shared by the plan workflow (its approve/reject updates) and
the Scheduler (a gated task starts only once its gate is approved). The Gate models
are the run result's own, so status, the memo and the history show every decision.
"""

from temporalio.exceptions import ApplicationError

from magsag.contracts.run import Gate, GateDecision, GateStatus


class Gates:
    def __init__(self, gates: dict[str, Gate]) -> None:
        self.gates = gates  # the run result's, updated in place
        # Approvals take effect when the workflow's loop applies them, not when the
        # update arrives: the order of commands in recorded histories depends on it.
        # Those approved in an earlier execution of the run (continue-as-new) are open.
        self._open = {g.id for g in gates.values() if g.status == GateStatus.APPROVED}

    def is_open(self, gate_id: str) -> bool:
        return gate_id in self._open

    def apply_decisions(self) -> list[Gate]:
        """Open the approved gates; returns the rejected ones (their tasks are skipped)."""
        rejected = []
        for gate in self.gates.values():
            if gate.status == GateStatus.APPROVED:
                self._open.add(gate.id)
            elif gate.status == GateStatus.REJECTED:
                rejected.append(gate)
        return rejected

    def waiting(self) -> list[str]:
        return sorted(g.id for g in self.gates.values() if g.status == GateStatus.WAITING)

    def reached(self, gate_ids: set[str]) -> list[str]:
        """These gates hold a task whose dependencies are done: they wait from now.
        Returns those that started waiting now, in order."""
        now_waiting = []
        for gate_id in sorted(gate_ids):
            if self.gates[gate_id].status == GateStatus.NOT_REACHED:
                self.gates[gate_id].status = GateStatus.WAITING
                now_waiting.append(gate_id)
        return now_waiting

    def decide(self, decision: GateDecision, status: GateStatus, at) -> Gate:
        gate = self.gates[self.waiting_gate(decision)]
        gate.status, gate.by, gate.at = status, decision.by, at
        gate.reason = decision.reason
        return gate

    def waiting_gate(self, decision: GateDecision) -> str:
        """The gate a decision is for; a clear error when there is nothing to decide."""
        gate_id = decision.gate_id()
        if gate_id is None:
            waiting = self.waiting()
            if not waiting:
                raise ApplicationError("nothing is waiting for approval", type="NothingWaiting")
            if len(waiting) > 1:
                raise ApplicationError(
                    f"several approvals wait ({', '.join(waiting)}); name one with --phase "
                    "or --task",
                    type="AmbiguousApproval",
                )
            gate_id = waiting[0]
        gate = self.gates.get(gate_id)
        if gate is None:
            raise ApplicationError(f"this run has no approval gate {gate_id}", type="NoSuchGate")
        if gate.status in (GateStatus.APPROVED, GateStatus.REJECTED):
            raise ApplicationError(
                f"{gate_id} was already {gate.status.value} by {gate.by or 'someone'}",
                type="AlreadyDecided",
            )
        if gate.status == GateStatus.NOT_REACHED:
            raise ApplicationError(
                f"nothing waits at {gate_id} yet: its dependencies have not finished",
                type="NothingWaiting",
            )
        return gate_id


def rejection(gate: Gate) -> str:
    """The error a task skipped by a rejected gate carries."""
    return f"rejected by {gate.by or 'someone'}: {gate.reason or 'no reason given'}"
