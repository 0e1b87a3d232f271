//! The process table and run queue, without the machine: pids, parents, states, who runs next
//! (round robin), exit, wait, and what a waiting or sleeping process is woken by.
//!
//! The kernel keeps each process's registers and address space in `T` and does the switching;
//! everything here is decided on plain data, so it is tested on the host. The semantics follow
//! Linux where it has them: pid 1 is init and adopts orphans; an exited process stays a zombie
//! until its parent reaps it with `wait4`; `wait4(-1)` takes any child, `wait4(pid)` one
//! child, and with no such child the answer is ECHILD.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

/// A process id (1 is init).
pub type Pid = u32;

/// Most processes alive (zombies included) at once.
pub const MAX_PROCS: usize = 32;

/// Why a process is not runnable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// `wait4`: any child (`None`) or this one.
    Child(Option<Pid>),
    /// `nanosleep` until this time (microseconds, the kernel's clock).
    Until(u64),
    /// `read` of the console: until input arrives.
    Input,
}

/// A process's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Ready to run (or running).
    Runnable,
    /// Waiting for something.
    Blocked(Wait),
    /// Ended with this wait status (Linux's encoding: `code << 8` for exit, the signal number
    /// for a kill); kept until the parent reaps it.
    Zombie(u32),
}

/// One process.
#[derive(Debug)]
pub struct Proc<T> {
    /// Its id.
    pub pid: Pid,
    /// Its parent (0 for init).
    pub parent: Pid,
    /// The path it was started from.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Times it was chosen to run.
    pub runs: u64,
    /// Times the tick took the CPU from it.
    pub preempted: u64,
    /// The kernel's part (registers, address space); `None` once it has ended.
    pub data: Option<T>,
}

/// Why `spawn` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// [`MAX_PROCS`] processes exist.
    TableFull,
    /// The parent does not exist or has ended.
    NoParent,
}

/// What `wait4` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaped {
    /// This child had ended with this status; it is gone now.
    Child(Pid, u32),
    /// Matching children exist, none has ended yet.
    NotYet,
    /// No child matches (ECHILD).
    NoChild,
}

/// Wait status of a process that called `exit(code)` (Linux: the low byte of the code, shifted).
pub fn exit_status(code: u64) -> u32 {
    ((code & 0xff) as u32) << 8
}

/// Wait status of a process the kernel killed (as by SIGKILL).
pub const KILLED: u32 = 9;

/// The table.
#[derive(Debug)]
pub struct Table<T> {
    procs: Vec<Proc<T>>,
    next_pid: Pid,
    /// The pid chosen last; the next choice starts after it.
    last: Pid,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Table<T> {
    /// An empty table; the first process spawned is pid 1.
    pub const fn new() -> Self {
        Table {
            procs: Vec::new(),
            next_pid: 1,
            last: 0,
        }
    }

    /// Adds a runnable process. `parent` 0 only for the first (init).
    pub fn spawn(&mut self, parent: Pid, name: &str, data: T) -> Result<Pid, SpawnError> {
        if self.procs.len() >= MAX_PROCS {
            return Err(SpawnError::TableFull);
        }
        if parent != 0 && self.get(parent).is_none_or(|p| p.data.is_none()) {
            return Err(SpawnError::NoParent);
        }
        let pid = self.next_pid;
        self.next_pid += 1;
        self.procs.push(Proc {
            pid,
            parent,
            name: name.into(),
            state: State::Runnable,
            runs: 0,
            preempted: 0,
            data: Some(data),
        });
        Ok(pid)
    }

    /// A process by pid.
    pub fn get(&self, pid: Pid) -> Option<&Proc<T>> {
        self.procs.iter().find(|p| p.pid == pid)
    }

    /// A process by pid, to change.
    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut Proc<T>> {
        self.procs.iter_mut().find(|p| p.pid == pid)
    }

    /// Every process, in pid order.
    pub fn iter(&self) -> impl Iterator<Item = &Proc<T>> {
        self.procs.iter()
    }

    /// Processes that have not ended.
    pub fn alive(&self) -> usize {
        self.procs.iter().filter(|p| p.data.is_some()).count()
    }

    /// Round robin: the first runnable process after the last one chosen (wrapping), or none.
    pub fn pick(&mut self) -> Option<Pid> {
        let n = self.procs.len();
        let start = self
            .procs
            .iter()
            .position(|p| p.pid > self.last)
            .unwrap_or(0);
        let pid = (0..n)
            .map(|i| &self.procs[(start + i) % n])
            .find(|p| p.state == State::Runnable)?
            .pid;
        self.last = pid;
        if let Some(p) = self.get_mut(pid) {
            p.runs += 1;
        }
        Some(pid)
    }

    /// Blocks `pid` on `w`.
    pub fn block(&mut self, pid: Pid, w: Wait) {
        if let Some(p) = self.get_mut(pid)
            && p.state == State::Runnable
        {
            p.state = State::Blocked(w);
        }
    }

    /// Makes every process blocked on something `ready` accepts runnable again; returns how
    /// many. The kernel retries each one's system call when it next runs.
    pub fn wake(&mut self, mut ready: impl FnMut(&Wait) -> bool) -> usize {
        let mut n = 0;
        for p in &mut self.procs {
            if let State::Blocked(w) = p.state
                && ready(&w)
            {
                p.state = State::Runnable;
                n += 1;
            }
        }
        n
    }

    /// Ends `pid` with `status`: its kernel part is returned (to be freed), its children go
    /// to init, it stays a zombie for its parent, and a parent waiting for it is woken.
    /// Ending init (or an unknown pid) returns `None` for the data only if already ended.
    pub fn exit(&mut self, pid: Pid, status: u32) -> Option<T> {
        let p = self.get_mut(pid)?;
        if matches!(p.state, State::Zombie(_)) {
            return None;
        }
        p.state = State::Zombie(status);
        let data = p.data.take();
        let parent = p.parent;
        for c in &mut self.procs {
            if c.parent == pid {
                c.parent = 1;
            }
        }
        // A zombie whose parent is gone (or is init itself ending) is reaped by init.
        let waker = |w: &Wait| matches!(w, Wait::Child(None)) || *w == Wait::Child(Some(pid));
        if let Some(pp) = self.get_mut(parent)
            && let State::Blocked(w) = pp.state
            && waker(&w)
        {
            pp.state = State::Runnable;
        }
        // Orphaned zombies now belong to init: wake it if it waits for any child.
        if self
            .procs
            .iter()
            .any(|c| c.parent == 1 && c.pid != pid && matches!(c.state, State::Zombie(_)))
            && let Some(init) = self.get_mut(1)
            && init.state == State::Blocked(Wait::Child(None))
        {
            init.state = State::Runnable;
        }
        data
    }

    /// `wait4(which)` by `parent`: `None` is any child.
    pub fn reap(&mut self, parent: Pid, which: Option<Pid>) -> Reaped {
        let matches = |p: &Proc<T>| p.parent == parent && which.is_none_or(|w| w == p.pid);
        if !self.procs.iter().any(matches) {
            return Reaped::NoChild;
        }
        let Some(i) = self
            .procs
            .iter()
            .position(|p| matches(p) && matches!(p.state, State::Zombie(_)))
        else {
            return Reaped::NotYet;
        };
        let p = self.procs.remove(i);
        match p.state {
            State::Zombie(s) => Reaped::Child(p.pid, s),
            _ => Reaped::NotYet,
        }
    }

    /// The earliest time a sleeper wants to wake, if any sleeps.
    pub fn next_wake(&self) -> Option<u64> {
        self.procs
            .iter()
            .filter_map(|p| match p.state {
                State::Blocked(Wait::Until(t)) => Some(t),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> Table<()> {
        let mut t = Table::new();
        t.spawn(0, "bin/init", ()).unwrap();
        for i in 1..n {
            t.spawn(1, &alloc::format!("bin/p{i}"), ()).unwrap();
        }
        t
    }

    #[test]
    fn round_robin_takes_turns_and_skips_the_blocked() {
        let mut t = table(3);
        let order: Vec<Pid> = (0..6).map(|_| t.pick().unwrap()).collect();
        assert_eq!(order, [1, 2, 3, 1, 2, 3]);
        t.block(2, Wait::Input);
        let order: Vec<Pid> = (0..4).map(|_| t.pick().unwrap()).collect();
        assert_eq!(order, [1, 3, 1, 3]);
        assert_eq!(t.wake(|w| *w == Wait::Input), 1);
        let order: Vec<Pid> = (0..3).map(|_| t.pick().unwrap()).collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(t.get(1).unwrap().runs, 5);
    }

    #[test]
    fn nothing_runnable_is_none() {
        let mut t = table(2);
        t.block(1, Wait::Child(None));
        t.block(2, Wait::Until(50));
        assert_eq!(t.pick(), None);
        assert_eq!(t.next_wake(), Some(50));
        assert_eq!(t.wake(|w| matches!(w, Wait::Until(u) if *u <= 40)), 0);
        assert_eq!(t.wake(|w| matches!(w, Wait::Until(u) if *u <= 50)), 1);
        assert_eq!(t.pick(), Some(2));
        assert_eq!(Table::<()>::new().pick(), None);
    }

    #[test]
    fn exit_wakes_the_waiting_parent_and_wait_reaps_once() {
        let mut t = table(3);
        t.block(1, Wait::Child(Some(3)));
        // Another child ending does not wake a parent waiting for pid 3.
        assert!(t.exit(2, exit_status(7)).is_some());
        assert_eq!(
            t.get(1).unwrap().state,
            State::Blocked(Wait::Child(Some(3)))
        );
        assert!(t.exit(3, KILLED).is_some());
        assert_eq!(t.get(1).unwrap().state, State::Runnable);
        assert_eq!(t.reap(1, Some(3)), Reaped::Child(3, 9));
        assert_eq!(t.reap(1, Some(3)), Reaped::NoChild);
        assert_eq!(t.reap(1, None), Reaped::Child(2, 7 << 8));
        assert_eq!(t.reap(1, None), Reaped::NoChild);
        // Exiting twice gives nothing back the second time.
        assert!(t.exit(1, 0).is_some());
        assert!(t.exit(1, 0).is_none());
    }

    #[test]
    fn a_running_child_is_not_yet_and_others_children_are_not_mine() {
        let mut t = table(3);
        let grandchild = t.spawn(2, "bin/gc", ()).unwrap();
        assert_eq!(t.reap(1, Some(grandchild)), Reaped::NoChild);
        assert_eq!(t.reap(1, None), Reaped::NotYet);
        assert_eq!(t.reap(3, None), Reaped::NoChild);
        assert_eq!(t.reap(2, None), Reaped::NotYet);
    }

    #[test]
    fn orphans_go_to_init_which_is_woken_for_their_ends() {
        let mut t = table(2);
        let gc = t.spawn(2, "bin/gc", ()).unwrap();
        t.block(1, Wait::Child(None));
        // The middle process ends: init is woken for it, and adopts the grandchild.
        t.exit(2, exit_status(0));
        assert_eq!(t.get(gc).unwrap().parent, 1);
        assert_eq!(t.reap(1, None), Reaped::Child(2, 0));
        t.block(1, Wait::Child(None));
        t.exit(gc, exit_status(3));
        assert_eq!(t.get(1).unwrap().state, State::Runnable);
        assert_eq!(t.reap(1, None), Reaped::Child(gc, 3 << 8));
    }

    #[test]
    fn the_table_has_a_limit_and_a_dead_parent_spawns_nothing() {
        let mut t = table(MAX_PROCS);
        assert_eq!(t.spawn(1, "x", ()), Err(SpawnError::TableFull));
        let mut t = table(2);
        t.exit(2, 0);
        assert_eq!(t.spawn(2, "x", ()), Err(SpawnError::NoParent));
        assert_eq!(t.spawn(9, "x", ()), Err(SpawnError::NoParent));
        assert_eq!(t.alive(), 1);
    }

    #[test]
    fn exit_statuses_are_linux_s() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(6), 0x600);
        assert_eq!(exit_status(0x1ff), 0xff00);
    }
}
