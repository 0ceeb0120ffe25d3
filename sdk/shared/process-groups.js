// The process groups of `$` commands and how they are stopped. Every `$` command leads its own
// process group; this registry knows which groups may still have members, stops one group
// (SIGTERM, then SIGKILL after a grace the caller may choose) when its command is killed, waits
// for the groups it stopped to be gone, kills every group at once (a forced cancel), and at
// shutdown stops every group that is left. It spawns nothing (shell.js does) and holds no global state: the runner
// owns one registry for its whole life, a shell created without one gets its own.
//
// A group is live while one of its members is not a zombie. Members orphaned by a kill are
// re-parented to PID 1, which in a plain container may never reap them, so `kill(-pgid, 0)`
// alone would call such a group live forever; on Linux, /proc tells zombies apart (elsewhere
// zombies count as live until reaped).

import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Time between SIGTERM and SIGKILL when one command is killed and its caller names no grace. */
const KILL_GRACE_MS = 2000;

/**
 * How often `shutdown()` and `stopped()` check whether the signalled groups are gone: first after
 * FIRST_POLL_MS (a process usually dies within a millisecond of SIGTERM), then twice as long
 * each time, up to MAX_POLL_MS (each check may read all of /proc).
 */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 100;

/** Registry size from which `add()` looks for groups that are gone (it then doubles). */
const FIRST_PRUNE_SIZE = 16;

export class ProcessGroups {
  /**
   * pgid -> {leaderRunning, terminated}. Invariant: bounded by about twice the groups that may
   * still have members: groups whose leader exited are dropped once gone (on exit, or when
   * `add()` prunes after the registry doubled).
   */
  #groups = new Map();
  #pruneAtSize = FIRST_PRUNE_SIZE;
  #killGraceMs;

  /** @param {{killGraceMs?: number}} [options] the SIGTERM-to-SIGKILL grace of `terminate()` */
  constructor({ killGraceMs = KILL_GRACE_MS } = {}) {
    this.#killGraceMs = killGraceMs;
  }

  /** Registers the group a detached child leads (its pid). */
  add(pgid) {
    if (this.#groups.size >= this.#pruneAtSize) {
      // Amortised: a pass over /proc only after the registry doubled since the last one.
      this.#forgetGone();
      this.#pruneAtSize = Math.max(FIRST_PRUNE_SIZE, 2 * this.#groups.size);
    }
    this.#groups.set(pgid, { leaderRunning: true, terminated: false });
  }

  /**
   * The leader exited and its output was read (its stdout and stderr closed): the group is
   * forgotten unless other members outlive it.
   */
  leaderExited(pgid) {
    const group = this.#groups.get(pgid);
    if (group === undefined) return;
    group.leaderRunning = false;
    if (liveGroups([pgid]).length === 0) this.#groups.delete(pgid);
  }

  /**
   * SIGTERM to the group now and SIGKILL after `graceMs` (the registry's grace when undefined),
   * unless the group is gone by then. The SIGKILL timer outlives the leader: members that ignore
   * SIGTERM are still killed. A second call for the same group does nothing.
   * @param {number} pgid
   * @param {number} [graceMs]
   */
  terminate(pgid, graceMs = this.#killGraceMs) {
    if (!this.#sigterm(pgid)) return;
    const group = this.#groups.get(pgid);
    const timer = setTimeout(() => {
      // Gone (and possibly its id reused by a newer command): nothing to kill.
      if (this.#groups.get(pgid) !== group) return;
      signalGroup(pgid, 'SIGKILL');
      this.#groups.delete(pgid);
    }, graceMs);
    // The runner's shutdown does not rely on this timer (it escalates itself).
    timer.unref();
  }

  /**
   * Resolves once every group sent SIGTERM is gone, its leader's output read (each has its grace:
   * its SIGKILL ends the wait for it at the latest), or when `stop` fires.
   * @param {AbortSignal} stop
   */
  async stopped(stop) {
    for (let pollMs = FIRST_POLL_MS; ; pollMs = Math.min(pollMs * 2, MAX_POLL_MS)) {
      this.#forgetGone();
      if (stop.aborted || ![...this.#groups.values()].some((group) => group.terminated)) return;
      try {
        await sleep(pollMs, undefined, { signal: stop });
      } catch {
        return; // only `stop` rejects this sleep
      }
    }
  }

  /** SIGKILL to every registered group now, those in their SIGTERM grace included (a forced cancel). */
  killAll() {
    for (const pgid of this.#groups.keys()) signalGroup(pgid, 'SIGKILL');
    this.#groups.clear();
  }

  /**
   * Stops every registered group: SIGTERM to those not signalled yet, wait up to `graceMs` for
   * all of them to be gone, SIGKILL what is left. Groups registered meanwhile are included.
   * @param {number} graceMs
   */
  async shutdown(graceMs) {
    const deadline = performance.now() + graceMs;
    let live;
    for (let pollMs = FIRST_POLL_MS; ; pollMs = Math.min(pollMs * 2, MAX_POLL_MS)) {
      for (const pgid of this.#groups.keys()) this.#sigterm(pgid);
      live = liveGroups([...this.#groups.keys()]);
      const left = deadline - performance.now();
      if (live.length === 0 || left <= 0) break;
      await sleep(Math.min(pollMs, left));
    }
    for (const pgid of live) signalGroup(pgid, 'SIGKILL');
    this.#groups.clear();
  }

  /** Sends SIGTERM once per group; false when the group is unknown or was signalled already. */
  #sigterm(pgid) {
    const group = this.#groups.get(pgid);
    if (group === undefined || group.terminated) return false;
    group.terminated = true;
    signalGroup(pgid, 'SIGTERM');
    return true;
  }

  /** Drops groups whose leader exited and whose other members are gone since. */
  #forgetGone() {
    const orphaned = [...this.#groups].filter(([, group]) => !group.leaderRunning).map(([pgid]) => pgid);
    if (orphaned.length === 0) return;
    const live = new Set(liveGroups(orphaned));
    for (const pgid of orphaned) if (!live.has(pgid)) this.#groups.delete(pgid);
  }
}

/**
 * Sends a signal (0 = only check) to a whole process group. True when the group exists (EPERM:
 * it exists but we may not signal it), false when it is gone (ESRCH).
 */
function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if (error.code === 'ESRCH') return false;
    if (error.code === 'EPERM') return true;
    throw error;
  }
}

/** The groups among `pgids` that still have a member that is not a zombie. */
function liveGroups(pgids) {
  const existing = pgids.filter((pgid) => signalGroup(pgid, 0));
  if (existing.length === 0) return existing;
  const running = runningGroupIds();
  return running === undefined ? existing : existing.filter((pgid) => running.has(pgid));
}

/** Ids of the process groups with a member that is not a zombie (from /proc); undefined without procfs. */
function runningGroupIds() {
  let entries;
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  const ids = new Set();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // the process exited since readdir
    }
    // `pid (comm) state ppid pgrp ...`; comm may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z') ids.add(Number(fields[2]));
  }
  return ids;
}
