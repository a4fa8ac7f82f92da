"""The interaction environment behind tests/raft/testdata/*.txt (etcd's rafttest idea).

Nodes are RawNodes over MemoryStorage; nothing happens unless a command says so, and
every Ready and message is printed, so a script shows exactly what the core does.

Commands:
  add-nodes N [voters=(..)] [learners=(..)] [empty=true] [prevote=..] [checkquorum=..]
            [election=10] [heartbeat=1] [max-inflight=256] [max-size=..] [lease=true]
  campaign ID | propose ID DATA | read-index ID CTX | transfer-leader ID to=ID
  propose-conf-change ID [v1=true] [transition=auto|implicit|explicit]
      (input: tokens vN add voter, lN add learner, rN remove, uN update)
  tick ID [n=1]            process-ready ID         deliver-msgs ID
  stabilize [ids...]       (process readies and deliver messages until quiet)
  isolate ID | recover     (drop all messages from/to ID; heal)
  restart ID               (crash: lose unpersisted state and undelivered messages)
  compact ID [index=applied]   report-unreachable ID PEER   report-snapshot ID PEER [failed]
  raft-state | raft-log ID | status ID
"""

from __future__ import annotations

from random import Random

from etcdpy.raft import (
    NONE,
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    MessageType,
    RaftConfig,
    RawNode,
    ReadOnlyOption,
    Ready,
    StepPeerNotFound,
    decode_conf_change_entry,
)
from etcdpy.raft.types import STATE_NAMES
from tests.raft.datadriven import TestCase

MT = MessageType
_STATE = STATE_NAMES
_ETYPE = {
    EntryType.NORMAL: "EntryNormal",
    EntryType.CONF_CHANGE: "EntryConfChange",
    EntryType.CONF_CHANGE_V2: "EntryConfChangeV2",
}
_CC = {
    "v": ConfChangeType.AddNode,
    "l": ConfChangeType.AddLearnerNode,
    "r": ConfChangeType.RemoveNode,
    "u": ConfChangeType.UpdateNode,
}
_CCNAME = {v: k for k, v in _CC.items()}


def fmt_cc(cc: ConfChange | ConfChangeV2) -> str:
    if isinstance(cc, ConfChange):
        return f"{_CCNAME[cc.type]}{cc.node_id}"
    parts = [f"{_CCNAME[c.type]}{c.node_id}" for c in cc.changes]
    if cc.transition != ConfChangeTransition.Auto:
        parts.append(cc.transition.name)
    return " ".join(parts) or "leave-joint"


def fmt_entry(e: Entry) -> str:
    if e.type == EntryType.NORMAL:
        body = repr(e.data.decode(errors="replace")).replace("'", '"')
    else:
        body = fmt_cc(decode_conf_change_entry(e.type, e.data))
    return f"{e.term}/{e.index} {_ETYPE[e.type]} {body}"


def fmt_cs(cs: ConfState) -> str:
    def ids(t: tuple[int, ...]) -> str:
        return "(" + " ".join(str(i) for i in t) + ")"

    s = f"voters={ids(cs.voters)}"
    if cs.voters_outgoing:
        s += f"&&{ids(cs.voters_outgoing)}"
    if cs.learners:
        s += f" learners={ids(cs.learners)}"
    if cs.learners_next:
        s += f" learners_next={ids(cs.learners_next)}"
    if cs.auto_leave:
        s += " autoleave"
    return s


def fmt_msg(m: Message) -> str:
    s = f"{m.from_}->{m.to} {m.type.name} Term:{m.term}"
    t = m.type
    if t in (MT.MsgApp, MT.MsgVote, MT.MsgPreVote):
        s += f" Log:{m.log_term}/{m.index}"
    if t == MT.MsgApp or t == MT.MsgHeartbeat:
        s += f" Commit:{m.commit}"
    if t == MT.MsgAppResp or t == MT.MsgReadIndexResp:
        s += f" Index:{m.index}"
    if m.reject:
        s += " Rejected"
        if t == MT.MsgAppResp:
            s += f" (Hint: {m.reject_hint}/{m.log_term})"
    if m.entries:
        s += " Entries:[" + ", ".join(fmt_entry(e) for e in m.entries) + "]"
    if m.context:
        s += f" Context:{m.context.decode(errors='replace')}"
    if m.snapshot is not None:
        md = m.snapshot.metadata
        s += f" Snapshot: Index:{md.index} Term:{md.term} {fmt_cs(md.conf_state)}"
    return s


class Env:
    def __init__(self) -> None:
        self.nodes: dict[int, RawNode] = {}
        self.storages: dict[int, MemoryStorage] = {}
        self.configs: dict[int, RaftConfig] = {}
        self.applied: dict[int, int] = {}
        self.conf: dict[int, ConfState] = {}
        self.inbox: dict[int, list[Message]] = {}
        self.isolated: set[int] = set()

    # --- commands -------------------------------------------------------------------

    def handle(self, tc: TestCase) -> str:
        fn = getattr(self, "cmd_" + tc.cmd.replace("-", "_"), None)
        if fn is None:
            raise ValueError(f"{tc.pos}: unknown command {tc.cmd}")
        out: str = fn(tc)
        return out

    def cmd_add_nodes(self, tc: TestCase) -> str:
        n = tc.arg_int(0)
        voters, learners = tc.kw_ids("voters"), tc.kw_ids("learners")
        out = []
        for _ in range(n):
            id_ = len(self.nodes) + 1
            st = (
                MemoryStorage()
                if tc.kw_bool("empty", False)
                else MemoryStorage.with_conf_state(
                    ConfState(voters=tuple(voters), learners=tuple(learners))
                )
            )
            cfg = RaftConfig(
                id=id_,
                election_tick=tc.kw_int("election", 10),
                heartbeat_tick=tc.kw_int("heartbeat", 1),
                max_inflight_msgs=tc.kw_int("max-inflight", 256),
                max_size_per_msg=tc.kw_int("max-size", 1 << 20),
                pre_vote=tc.kw_bool("prevote", True),
                check_quorum=tc.kw_bool("checkquorum", True),
                read_only_option=(
                    ReadOnlyOption.LEASE_BASED
                    if tc.kw_bool("lease", False)
                    else ReadOnlyOption.SAFE
                ),
                rng=Random(id_),
            )
            self.storages[id_] = st
            self.configs[id_] = cfg
            self.nodes[id_] = RawNode(cfg, st)
            self.applied[id_] = 0
            self.conf[id_] = st.initial_state()[1]
            self.inbox[id_] = []
            out.append(f"INFO {id_} became follower at term 0 {fmt_cs(self.conf[id_])}")
        return "\n".join(out)

    def cmd_campaign(self, tc: TestCase) -> str:
        self.nodes[tc.arg_int(0)].campaign()
        return ""

    def cmd_propose(self, tc: TestCase) -> str:
        try:
            self.nodes[tc.arg_int(0)].propose(tc.args[1].encode())
        except Exception as e:  # the script records the error
            return f"error: {type(e).__name__}"
        return ""

    def cmd_read_index(self, tc: TestCase) -> str:
        self.nodes[tc.arg_int(0)].read_index(tc.args[1].encode())
        return ""

    def cmd_transfer_leader(self, tc: TestCase) -> str:
        self.nodes[tc.arg_int(0)].transfer_leader(tc.kw_int("to", 0))
        return ""

    def cmd_propose_conf_change(self, tc: TestCase) -> str:
        toks = " ".join(tc.input).split()
        singles = tuple(ConfChangeSingle(_CC[t[0]], int(t[1:])) for t in toks)
        cc: ConfChange | ConfChangeV2
        if tc.kw_bool("v1", False):
            (one,) = singles
            cc = ConfChange(type=one.type, node_id=one.node_id)
        else:
            tr = {
                "auto": ConfChangeTransition.Auto,
                "implicit": ConfChangeTransition.JointImplicit,
                "explicit": ConfChangeTransition.JointExplicit,
            }[tc.kwargs.get("transition", "auto")]
            cc = ConfChangeV2(changes=singles, transition=tr)
        try:
            self.nodes[tc.arg_int(0)].propose_conf_change(cc)
        except Exception as e:
            return f"error: {type(e).__name__}"
        return ""

    def cmd_tick(self, tc: TestCase) -> str:
        rn = self.nodes[tc.arg_int(0)]
        for _ in range(tc.kw_int("n", 1)):
            rn.tick()
        return ""

    def cmd_isolate(self, tc: TestCase) -> str:
        self.isolated.add(tc.arg_int(0))
        return ""

    def cmd_recover(self, tc: TestCase) -> str:
        self.isolated.clear()
        return ""

    def cmd_restart(self, tc: TestCase) -> str:
        id_ = tc.arg_int(0)
        st = self.storages[id_]
        applied = st.snapshot().metadata.index
        self.nodes[id_] = RawNode(
            RaftConfig(
                **{
                    **{
                        f: getattr(self.configs[id_], f)
                        for f in (
                            "id",
                            "election_tick",
                            "heartbeat_tick",
                            "max_inflight_msgs",
                            "max_size_per_msg",
                            "pre_vote",
                            "check_quorum",
                            "read_only_option",
                        )
                    },
                    "applied": applied,
                },
                rng=Random(id_ + 100),
            ),
            st,
        )
        self.applied[id_] = applied
        self.conf[id_] = st.initial_state()[1]
        self.inbox[id_] = []
        hs = st.hard_state
        return (
            f"INFO {id_} restarted: term={hs.term} vote={hs.vote} commit={hs.commit} "
            f"applied={applied} last={st.last_index()}"
        )

    def cmd_compact(self, tc: TestCase) -> str:
        id_ = tc.arg_int(0)
        idx = tc.kw_int("index", self.applied[id_])
        st = self.storages[id_]
        st.create_snapshot(idx, self.conf[id_], b"")
        st.compact(idx)
        return f"first index now {st.first_index()}"

    def cmd_report_unreachable(self, tc: TestCase) -> str:
        self.nodes[tc.arg_int(0)].report_unreachable(tc.arg_int(1))
        return ""

    def cmd_report_snapshot(self, tc: TestCase) -> str:
        self.nodes[tc.arg_int(0)].report_snapshot(tc.arg_int(1), "failed" in tc.args)
        return ""

    def cmd_process_ready(self, tc: TestCase) -> str:
        return "\n".join(self._process_ready(tc.arg_int(0)))

    def cmd_deliver_msgs(self, tc: TestCase) -> str:
        return "\n".join(self._deliver(tc.arg_int(0)))

    def cmd_stabilize(self, tc: TestCase) -> str:
        ids = [int(a) for a in tc.args] or sorted(self.nodes)
        out: list[str] = []
        while True:
            progress = False
            for i in ids:
                if self.nodes[i].has_ready():
                    out.append(f"> {i} handling Ready")
                    out += ["  " + s for s in self._process_ready(i)]
                    progress = True
            for i in ids:
                if self.inbox[i]:
                    out.append(f"> {i} receiving messages")
                    out += ["  " + s for s in self._deliver(i)]
                    progress = True
            if not progress:
                return "\n".join(out)

    def cmd_raft_state(self, tc: TestCase) -> str:
        out = []
        for i in sorted(self.nodes):
            st = self.nodes[i].status()
            role = (
                "Learner"
                if self.nodes[i].raft.is_learner
                else ("Voter" if i in self.nodes[i].raft.prs.progress else "Non-member")
            )
            out.append(
                f"{i}: {_STATE[st.soft_state.raft_state]} ({role}) "
                f"Term:{st.hard_state.term} Lead:{st.soft_state.lead}"
            )
        return "\n".join(out)

    def cmd_raft_log(self, tc: TestCase) -> str:
        st = self.storages[tc.arg_int(0)]
        if st.last_index() < st.first_index():
            return f"log is empty: first index={st.first_index()}, last index={st.last_index()}"
        return "\n".join(fmt_entry(e) for e in st.entries(st.first_index(), st.last_index() + 1))

    def cmd_status(self, tc: TestCase) -> str:
        st = self.nodes[tc.arg_int(0)].status()
        out = [
            f"{i}: {p.state.name} match={p.match} next={p.next}"
            + (" learner" if p.is_learner else "")
            + (" paused" if p.paused else "")
            + (f" pendingSnap={p.pending_snapshot}" if p.pending_snapshot else "")
            for i, p in sorted(st.progress.items())
        ]
        out.append(fmt_cs(st.conf_state))
        return "\n".join(out)

    # --- mechanics ---------------------------------------------------------------------

    def _process_ready(self, i: int) -> list[str]:
        rn = self.nodes[i]
        if not rn.has_ready():
            return ["<empty Ready>"]
        rd: Ready = rn.ready()
        out = [f"Ready MustSync={str(rd.must_sync).lower()}:"]
        if rd.soft_state is not None:
            lead = rd.soft_state.lead
            out.append(
                f"Lead:{lead if lead != NONE else 0} State:{_STATE[rd.soft_state.raft_state]}"
            )
        if not rd.hard_state.is_empty():
            hs = rd.hard_state
            out.append(f"HardState Term:{hs.term} Vote:{hs.vote} Commit:{hs.commit}")
        if rd.entries:
            out.append("Entries:")
            out += [fmt_entry(e) for e in rd.entries]
        if not rd.snapshot.is_empty():
            md = rd.snapshot.metadata
            out.append(f"Snapshot Index:{md.index} Term:{md.term} {fmt_cs(md.conf_state)}")
        if rd.committed_entries:
            out.append("CommittedEntries:")
            out += [fmt_entry(e) for e in rd.committed_entries]
        if rd.messages:
            out.append("Messages:")
            out += [fmt_msg(m) for m in rd.messages]
        for rs in rd.read_states:
            out.append(f"ReadState Index:{rs.index} Ctx:{rs.request_ctx.decode()}")
        # the application's duties, in order
        self.storages[i].save(rd.hard_state, rd.entries, rd.snapshot)
        for m in rd.messages:
            if m.from_ in self.isolated or m.to in self.isolated:
                continue
            self.inbox[m.to].append(m)
        if not rd.snapshot.is_empty():
            self.applied[i] = rd.snapshot.metadata.index
            self.conf[i] = rd.snapshot.metadata.conf_state
        for e in rd.committed_entries:
            if e.type != EntryType.NORMAL:
                cs = rn.apply_conf_change(decode_conf_change_entry(e.type, e.data))
                self.conf[i] = cs
                out.append(f"INFO {i} switched to configuration {fmt_cs(cs)}")
            self.applied[i] = e.index
        rn.advance(rd)
        return out

    def _deliver(self, i: int) -> list[str]:
        msgs, self.inbox[i] = self.inbox[i], []
        out = []
        for m in msgs:
            out.append(fmt_msg(m))
            try:
                self.nodes[i].step(m)
            except StepPeerNotFound:
                out.append("  (step: peer not found)")
        return out
