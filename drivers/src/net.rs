//! The network: a virtio-net device on the virtio-mmio transport (`virtio-drivers`) and its
//! `smoltcp` interface. Binds the DT's `virtio,mmio` slots; a slot with another device type
//! (or none: QEMU virt describes 32 empty ones) is a quiet miss. The attestation agent
//! (`agent.rs`) drives the interface by polling: no interrupt is needed for a boot-time
//! exchange.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use spin::Mutex;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// virtio-net through the MMIO transport, 16-entry queues.
pub type Net = virtio_drivers::device::net::VirtIONet<KernelHal, MmioTransport<'static>, 16>;

/// The bound network device (the first one).
pub static NET: Mutex<Option<Net>> = Mutex::new(None);

/// Largest frame: Ethernet MTU 1500 + its 14-byte header, rounded up.
const FRAME: usize = 1536;

/// The driver.
pub const DRIVER: Driver = Driver {
    name: "virtio-net",
    bus: "platform",
    ids: &[MatchId::Compatible("virtio,mmio")],
    probe,
    bound: None,
};

/// DMA for virtio-drivers: the kernel maps RAM identity (VA = PA), and the device reaches
/// normal-world RAM directly (no IOMMU; the hyp's stage-2 leaves kernel heap pages to the host,
/// which is where they come from).
pub struct KernelHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned, exclusively owned heap pages whose physical
// address is their virtual one (the kernel's identity map); `dma_dealloc` frees exactly those;
// `share` hands out the buffer's own address under the same identity; MMIO addresses are
// identity mapped too (every DT device region is).
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let layout = core::alloc::Layout::from_size_align(pages.max(1) * 4096, 4096)
            .expect("a page-aligned layout");
        // SAFETY: a non-zero size with a valid alignment.
        let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let p = NonNull::new(p).unwrap_or_else(|| alloc::alloc::handle_alloc_error(layout));
        (p.as_ptr() as u64, p)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let layout = core::alloc::Layout::from_size_align(pages.max(1) * 4096, 4096)
            .expect("a page-aligned layout");
        // SAFETY: per the trait's contract `vaddr` came from `dma_alloc` with `pages`.
        unsafe { alloc::alloc::dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as usize as *mut u8).expect("MMIO at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as u64
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

fn probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let dev = ctx.device();
    let region = *dev.regions.first().ok_or(ProbeError::Failed("no reg"))?;
    if region.size < 0x100 {
        return Err(ProbeError::Failed(
            "reg smaller than the virtio-mmio registers",
        ));
    }
    if NET.lock().is_some() {
        return Err(ProbeError::NoDevice);
    }
    let header = NonNull::new(region.base as usize as *mut VirtIOHeader)
        .ok_or(ProbeError::Failed("reg at 0"))?;
    // SAFETY: the DT's virtio-mmio slot (mapped as device memory before drivers probe), bound
    // to this driver only; the transport checks the magic and version itself.
    let transport = unsafe { MmioTransport::new(header, region.size as usize) }
        .map_err(|_| ProbeError::NoDevice)?;
    if transport.device_type() != DeviceType::Network {
        return Err(ProbeError::NoDevice);
    }
    let net = Net::new(transport, FRAME).map_err(|_| ProbeError::Failed("virtio-net set-up"))?;
    let mac = net.mac_address();
    log::info!(
        "virtio-net at {:#x}: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        region.base,
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    *NET.lock() = Some(net);
    Ok(())
}

/// smoltcp's view of the device.
pub struct Phy<'a>(pub &'a mut Net);

/// A received frame (copied out, its buffer already back in the queue).
pub struct Rx(Vec<u8>);
/// A frame to send.
pub struct Tx<'a>(&'a mut Net);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.0.new_tx_buffer(len);
        let r = f(buf.packet_mut());
        if self.0.send(buf).is_err() {
            log::warn!("virtio-net: a frame was not sent");
        }
        r
    }
}

impl phy::Device for Phy<'_> {
    type RxToken<'a>
        = Rx
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let rx = self.0.receive().ok()?;
        let frame = rx.packet().to_vec();
        if self.0.recycle_rx_buffer(rx).is_err() {
            log::warn!("virtio-net: a receive buffer was lost");
        }
        Some((Rx(frame), Tx(self.0)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Self::TxToken<'_>> {
        if self.0.can_send() {
            Some(Tx(&mut *self.0))
        } else {
            None
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c.max_burst_size = Some(1);
        c
    }
}

/// A scratch buffer pair for a TCP socket.
pub fn socket_buffers() -> (Box<[u8]>, Box<[u8]>) {
    (vec![0u8; 16 * 1024].into(), vec![0u8; 16 * 1024].into())
}
