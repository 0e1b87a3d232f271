//! The device model: buses, devices, drivers, and Linux's deferred-probe rules.
//!
//! This crate owns *which driver binds which device and when*. It follows
//! `drivers/base/dd.c`:
//! - a device is matched against the drivers of its bus when either is registered;
//! - `probe` answers [`ProbeError::Defer`] (try again later), [`ProbeError::NoDevice`] (a quiet
//!   miss: the hardware is not there) or [`ProbeError::Failed`]; after a miss or a failure the
//!   next matching driver gets its chance;
//! - deferred devices wait on a pending list; every successful bind *triggers* a retry of that
//!   list, and a trigger counter read before each probe catches a bind that happened while the
//!   probe ran (here: a child device bound synchronously from inside the probe), so the retry is
//!   not lost;
//! - [`DeviceModel::flush_deferred`] (the `late` initcall) retries until nothing changes, and
//!   [`DeviceModel::still_deferred`] reports what is left, with reasons.
//!
//! It knows nothing of hardware: resources are plain numbers, and every event goes to a sink the
//! owner supplies (the kernel prints `@event probe ...` lines; tests record).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Identifies a device inside one [`DeviceModel`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub usize);

/// What a driver matches on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MatchId {
    /// A DT `compatible` string.
    Compatible(&'static str),
    /// An FF-A partition UUID (bytes in the order the FF-A spec transmits them).
    Uuid([u8; 16]),
    /// A device name (synthetic platform devices such as `arm-ffa`).
    Name(&'static str),
}

/// An MMIO region.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Physical base address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A device as its bus describes it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Device {
    /// Bus name (`platform`, `ffa`).
    pub bus: String,
    /// Device name, unique among its siblings (`pl011@9000000`, `arm-ffa-1`).
    pub name: String,
    /// DT compatible strings, most specific first.
    pub compatible: Vec<String>,
    /// FF-A UUID, when the device is an FF-A partition.
    pub uuid: Option<[u8; 16]>,
    /// MMIO regions.
    pub regions: Vec<Region>,
    /// Interrupts as GIC INTIDs.
    pub irqs: Vec<u32>,
    /// Other named numeric properties (`partition-id`, `properties`, ...).
    pub props: Vec<(String, u64)>,
}

impl Device {
    /// A device with a bus and name and nothing else.
    pub fn new(bus: &str, name: &str) -> Self {
        Device {
            bus: bus.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// Looks up a numeric property.
    pub fn prop(&self, key: &str) -> Option<u64> {
        self.props.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The match rank of `id` for this device: lower is better, `None` for no match.
    /// DT compatibles rank by their position (the first string is the most specific).
    fn match_rank(&self, id: &MatchId) -> Option<usize> {
        match id {
            MatchId::Compatible(c) => self.compatible.iter().position(|d| d == c),
            MatchId::Uuid(u) => (self.uuid.as_ref() == Some(u)).then_some(0),
            MatchId::Name(n) => (self.name == *n).then_some(0),
        }
    }
}

/// Why a probe did not bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// A dependency is not ready: put the device on the pending list (`-EPROBE_DEFER`).
    Defer(&'static str),
    /// The device is not there after all: a quiet miss (`-ENODEV`).
    NoDevice,
    /// The probe failed (logged); the next matching driver may try.
    Failed(&'static str),
}

/// What `probe` returns.
pub type ProbeResult = Result<(), ProbeError>;

/// A driver: a name, its bus, what it matches and its probe.
#[derive(Copy, Clone)]
pub struct Driver {
    /// Driver name (appears in events).
    pub name: &'static str,
    /// The bus it serves.
    pub bus: &'static str,
    /// Match table.
    pub ids: &'static [MatchId],
    /// Probe: bind to the device in `ctx`, or say why not.
    pub probe: fn(&mut ProbeCtx<'_>) -> ProbeResult,
    /// Runs once the device is bound (after its `probe` event): work that belongs to a bound
    /// device, such as publishing its children (an FF-A core's partitions).
    pub bound: Option<fn(&mut ProbeCtx<'_>)>,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("name", &self.name)
            .field("bus", &self.bus)
            .field("ids", &self.ids)
            .finish()
    }
}

/// Where a device stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// No driver has bound it (none matched, or all missed/failed).
    Unbound,
    /// Bound to the named driver.
    Bound(&'static str),
    /// On the pending list: the last probe deferred for this reason.
    Deferred {
        /// Driver that deferred.
        driver: &'static str,
        /// Its reason.
        reason: &'static str,
    },
}

/// The outcome of one probe, as reported to the sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Bound.
    Ok,
    /// Deferred with a reason.
    Defer(&'static str),
    /// Quiet miss.
    NoDevice,
    /// Failure with a reason.
    Err(&'static str),
}

impl ProbeOutcome {
    /// The word used in `@event probe result=...`.
    pub fn word(&self) -> &'static str {
        match self {
            ProbeOutcome::Ok => "ok",
            ProbeOutcome::Defer(_) => "defer",
            ProbeOutcome::NoDevice => "nodev",
            ProbeOutcome::Err(_) => "err",
        }
    }

    /// The reason, if the outcome has one.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            ProbeOutcome::Defer(r) | ProbeOutcome::Err(r) => Some(r),
            _ => None,
        }
    }
}

/// Events the model reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelEvent {
    /// A device was added.
    DeviceAdded {
        /// Its path.
        path: String,
    },
    /// A probe ran.
    Probe {
        /// Device path.
        dev: String,
        /// Driver name.
        drv: &'static str,
        /// What happened.
        outcome: ProbeOutcome,
        /// How long the probe took, in the clock's units (0 without a clock); it includes
        /// the probes of children the driver added.
        us: u64,
    },
    /// The pending list is being retried.
    DeferredRetry {
        /// How many devices are retried.
        pending: usize,
        /// Trigger count at the start of the retry.
        trigger: u64,
    },
}

/// Errors of the model's own API (not probe results).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// The device names a bus that is not registered.
    UnknownBus(String),
    /// A device with this path exists already.
    DuplicatePath(String),
    /// A driver with this name exists already.
    DuplicateDriver(&'static str),
    /// The bus is registered already.
    DuplicateBus(String),
    /// The parent device does not exist.
    UnknownParent(DeviceId),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::UnknownBus(b) => write!(f, "bus `{b}` is not registered"),
            ModelError::DuplicatePath(p) => write!(f, "device `{p}` exists already"),
            ModelError::DuplicateDriver(d) => write!(f, "driver `{d}` is registered already"),
            ModelError::DuplicateBus(b) => write!(f, "bus `{b}` is registered already"),
            ModelError::UnknownParent(id) => write!(f, "parent device {} does not exist", id.0),
        }
    }
}

struct Entry {
    dev: Device,
    parent: Option<DeviceId>,
    path: String,
    state: DeviceState,
}

/// A sink for model events.
pub type Sink = Box<dyn FnMut(&ModelEvent) + Send>;

/// Buses, devices and drivers, with the pending (deferred) list.
pub struct DeviceModel {
    buses: Vec<String>,
    drivers: Vec<Driver>,
    devices: Vec<Entry>,
    pending: Vec<DeviceId>,
    trigger_count: u64,
    sink: Sink,
    clock: Option<fn() -> u64>,
}

impl fmt::Debug for DeviceModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceModel")
            .field("buses", &self.buses)
            .field("drivers", &self.drivers.len())
            .field("devices", &self.devices.len())
            .field("pending", &self.pending)
            .field("trigger_count", &self.trigger_count)
            .finish()
    }
}

/// What a probe sees: its device, and a handle to add children and drivers.
pub struct ProbeCtx<'a> {
    model: &'a mut DeviceModel,
    id: DeviceId,
}

impl ProbeCtx<'_> {
    /// The device being probed.
    pub fn device(&self) -> &Device {
        &self.model.devices[self.id.0].dev
    }

    /// The device's id.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// The device's path.
    pub fn path(&self) -> &str {
        &self.model.devices[self.id.0].path
    }

    /// Adds a child of the device being probed; it is matched (and may bind) at once.
    pub fn add_child(&mut self, dev: Device) -> Result<DeviceId, ModelError> {
        self.model.add_device(dev, Some(self.id))
    }

    /// Registers a driver from inside a probe.
    pub fn register_driver(&mut self, drv: Driver) -> Result<(), ModelError> {
        self.model.register_driver(drv)
    }

    /// Registers a bus from inside a probe (an FF-A core registering its partitions' bus).
    pub fn register_bus(&mut self, name: &str) -> Result<(), ModelError> {
        self.model.register_bus(name)
    }
}

impl DeviceModel {
    /// An empty model reporting to `sink`.
    pub fn new(sink: Sink) -> Self {
        DeviceModel {
            buses: Vec::new(),
            drivers: Vec::new(),
            devices: Vec::new(),
            pending: Vec::new(),
            trigger_count: 0,
            sink,
            clock: None,
        }
    }

    /// Times every probe with `clock` (microseconds, say); reported as the probe's `us`.
    pub fn set_clock(&mut self, clock: fn() -> u64) {
        self.clock = Some(clock);
    }

    /// Registers a bus.
    pub fn register_bus(&mut self, name: &str) -> Result<(), ModelError> {
        if self.has_bus(name) {
            return Err(ModelError::DuplicateBus(name.into()));
        }
        self.buses.push(name.into());
        Ok(())
    }

    /// Whether a bus is registered.
    pub fn has_bus(&self, name: &str) -> bool {
        self.buses.iter().any(|b| b == name)
    }

    /// Adds a device under `parent` (or at the root of its bus) and tries to bind it.
    pub fn add_device(
        &mut self,
        dev: Device,
        parent: Option<DeviceId>,
    ) -> Result<DeviceId, ModelError> {
        if !self.has_bus(&dev.bus) {
            return Err(ModelError::UnknownBus(dev.bus));
        }
        let path = match parent {
            Some(p) => {
                let entry = self.devices.get(p.0).ok_or(ModelError::UnknownParent(p))?;
                alloc::format!("{}/{}", entry.path, dev.name)
            }
            None => alloc::format!("{}/{}", dev.bus, dev.name),
        };
        if self.find(&path).is_some() {
            return Err(ModelError::DuplicatePath(path));
        }
        let id = DeviceId(self.devices.len());
        self.devices.push(Entry {
            dev,
            parent,
            path: path.clone(),
            state: DeviceState::Unbound,
        });
        (self.sink)(&ModelEvent::DeviceAdded { path });
        self.attach(id);
        Ok(id)
    }

    /// Registers a driver and tries it on every unbound device of its bus.
    pub fn register_driver(&mut self, drv: Driver) -> Result<(), ModelError> {
        if !self.has_bus(drv.bus) {
            return Err(ModelError::UnknownBus(drv.bus.into()));
        }
        if self.drivers.iter().any(|d| d.name == drv.name) {
            return Err(ModelError::DuplicateDriver(drv.name));
        }
        self.drivers.push(drv);
        let candidates: Vec<DeviceId> = (0..self.devices.len())
            .map(DeviceId)
            .filter(|id| {
                let e = &self.devices[id.0];
                e.state == DeviceState::Unbound
                    && e.dev.bus == drv.bus
                    && drv.ids.iter().any(|m| e.dev.match_rank(m).is_some())
            })
            .collect();
        for id in candidates {
            // A probe earlier in this loop may have bound it (through a child), so re-check.
            if self.devices[id.0].state == DeviceState::Unbound {
                self.try_driver(id, drv);
            }
        }
        Ok(())
    }

    /// Matching drivers for a device, best match first (rank, then registration order).
    fn matching_drivers(&self, id: DeviceId) -> Vec<Driver> {
        let dev = &self.devices[id.0].dev;
        let mut found: Vec<(usize, usize, Driver)> = self
            .drivers
            .iter()
            .enumerate()
            .filter(|(_, d)| d.bus == dev.bus)
            .filter_map(|(i, d)| {
                d.ids
                    .iter()
                    .filter_map(|m| dev.match_rank(m))
                    .min()
                    .map(|rank| (rank, i, *d))
            })
            .collect();
        found.sort_by_key(|(rank, i, _)| (*rank, *i));
        found.into_iter().map(|(_, _, d)| d).collect()
    }

    /// Tries every matching driver on a device until one binds or one defers.
    fn attach(&mut self, id: DeviceId) {
        for drv in self.matching_drivers(id) {
            match self.try_driver(id, drv) {
                Attempt::Bound | Attempt::Deferred => return,
                Attempt::Missed => {}
            }
        }
    }

    fn try_driver(&mut self, id: DeviceId, drv: Driver) -> Attempt {
        let local_trigger = self.trigger_count;
        let start = self.clock.map(|c| c());
        let result = (drv.probe)(&mut ProbeCtx { model: self, id });
        let us = match (self.clock, start) {
            (Some(c), Some(s)) => c().saturating_sub(s),
            _ => 0,
        };
        let outcome = match &result {
            Ok(()) => ProbeOutcome::Ok,
            Err(ProbeError::Defer(r)) => ProbeOutcome::Defer(r),
            Err(ProbeError::NoDevice) => ProbeOutcome::NoDevice,
            Err(ProbeError::Failed(r)) => ProbeOutcome::Err(r),
        };
        let dev = self.devices[id.0].path.clone();
        (self.sink)(&ModelEvent::Probe {
            dev,
            drv: drv.name,
            outcome,
            us,
        });
        match result {
            Ok(()) => {
                self.devices[id.0].state = DeviceState::Bound(drv.name);
                self.pending.retain(|p| *p != id);
                if let Some(bound) = drv.bound {
                    bound(&mut ProbeCtx { model: self, id });
                }
                self.trigger();
                Attempt::Bound
            }
            Err(ProbeError::Defer(reason)) => {
                self.devices[id.0].state = DeviceState::Deferred {
                    driver: drv.name,
                    reason,
                };
                if !self.pending.contains(&id) {
                    self.pending.push(id);
                }
                // A bind while this probe ran (e.g. a child bound from inside it) may have
                // satisfied what it waited for: retry now rather than lose the trigger.
                if local_trigger != self.trigger_count {
                    self.trigger();
                }
                Attempt::Deferred
            }
            Err(_) => {
                self.devices[id.0].state = DeviceState::Unbound;
                Attempt::Missed
            }
        }
    }

    /// A successful bind happened: retry the pending list once.
    fn trigger(&mut self) {
        self.trigger_count += 1;
        if self.pending.is_empty() {
            return;
        }
        let active = core::mem::take(&mut self.pending);
        (self.sink)(&ModelEvent::DeferredRetry {
            pending: active.len(),
            trigger: self.trigger_count,
        });
        for id in active {
            // A bind during this loop may already have retried (and bound) it.
            if matches!(self.devices[id.0].state, DeviceState::Deferred { .. }) {
                self.devices[id.0].state = DeviceState::Unbound;
                self.attach(id);
            }
        }
    }

    /// The `late` pass: retries the pending list until a pass changes nothing.
    /// Returns how many devices bound during the flush.
    pub fn flush_deferred(&mut self) -> usize {
        let bound_before = self.bound_count();
        loop {
            let before = self.trigger_count;
            if self.pending.is_empty() {
                break;
            }
            // Retrying counts as a trigger (Linux's deferred_probe_initcall triggers explicitly).
            self.trigger();
            // If nothing bound during the retry, the list is stable.
            if self.trigger_count == before + 1 {
                break;
            }
        }
        self.bound_count() - bound_before
    }

    fn bound_count(&self) -> usize {
        self.devices
            .iter()
            .filter(|e| matches!(e.state, DeviceState::Bound(_)))
            .count()
    }

    /// Devices still deferred, with the driver and reason: `(path, driver, reason)`.
    pub fn still_deferred(&self) -> Vec<(String, &'static str, &'static str)> {
        self.pending
            .iter()
            .filter_map(|id| match self.devices[id.0].state {
                DeviceState::Deferred { driver, reason } => {
                    Some((self.devices[id.0].path.clone(), driver, reason))
                }
                _ => None,
            })
            .collect()
    }

    /// How many successful binds have triggered a retry so far.
    pub fn trigger_count(&self) -> u64 {
        self.trigger_count
    }

    /// Finds a device by path.
    pub fn find(&self, path: &str) -> Option<DeviceId> {
        self.devices
            .iter()
            .position(|e| e.path == path)
            .map(DeviceId)
    }

    /// A device's description.
    pub fn device(&self, id: DeviceId) -> Option<&Device> {
        self.devices.get(id.0).map(|e| &e.dev)
    }

    /// A device's path.
    pub fn path(&self, id: DeviceId) -> Option<&str> {
        self.devices.get(id.0).map(|e| e.path.as_str())
    }

    /// A device's parent.
    pub fn parent(&self, id: DeviceId) -> Option<DeviceId> {
        self.devices.get(id.0).and_then(|e| e.parent)
    }

    /// A device's state.
    pub fn state(&self, id: DeviceId) -> Option<&DeviceState> {
        self.devices.get(id.0).map(|e| &e.state)
    }

    /// Every device id, in the order they were added.
    pub fn devices(&self) -> impl Iterator<Item = DeviceId> + '_ {
        (0..self.devices.len()).map(DeviceId)
    }
}

enum Attempt {
    Bound,
    Deferred,
    Missed,
}

#[cfg(test)]
mod tests;
