//! The MPI calls rsmpi does not wrap as this transport needs them: the non-blocking
//! collectives, matched receives and request tests, each bounded by its caller's deadline.

use super::*;

/// This worker's part of the coordinator's `MPI_Iscatterv`, `len` bytes.
pub(super) fn scatter_receive(len: usize) -> Result<Vec<u8>, LinkError> {
    let mut buf = vec![0u8; len];
    let count =
        c_int::try_from(len).map_err(|_| LinkError::Channel(format!("a {len}-byte part")))?;
    // SAFETY: `buf` outlives the request, which is waited for before it is returned; the
    // send arguments are ignored on a rank that is not the root.
    unsafe {
        let mut request = iscatterv(
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            buf.as_mut_ptr(),
            count,
        )?;
        wait(&mut request);
    }
    Ok(buf)
}

/// Sends this worker's result into the coordinator's `MPI_Igatherv`.
pub(super) fn gather_send(frame: &[u8]) -> Result<(), LinkError> {
    let count = c_int::try_from(frame.len())
        .map_err(|_| LinkError::Channel(format!("a {}-byte result", frame.len())))?;
    // SAFETY: `frame` outlives the request, which is waited for here; the receive arguments
    // are ignored on a rank that is not the root.
    unsafe {
        let mut request = igatherv(
            frame.as_ptr(),
            count,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )?;
        wait(&mut request);
    }
    Ok(())
}

/// Collectives are non-blocking on every rank (a non-blocking collective never matches a
/// blocking one): rank 0 polls its request with everything else, so a stopped rank costs a
/// deadline, never a hang in `MPI_Scatterv`; a worker waits on its own.
///
/// # Safety
/// The buffers and count arrays must stay valid until the request completes.
pub(super) unsafe fn iscatterv(
    send: *const u8,
    counts: *const c_int,
    displs: *const c_int,
    recv: *mut u8,
    recv_count: c_int,
) -> Result<ffi::MPI_Request, LinkError> {
    let mut request: ffi::MPI_Request = std::mem::zeroed();
    let rc = ffi::MPI_Iscatterv(
        send as *const c_void,
        counts,
        displs,
        ffi::RSMPI_UINT8_T,
        recv as *mut c_void,
        recv_count,
        ffi::RSMPI_UINT8_T,
        0,
        SimpleCommunicator::world().as_raw(),
        &mut request,
    );
    started("MPI_Iscatterv", rc, request)
}

/// See [`iscatterv`].
///
/// # Safety
/// The buffers and count arrays must stay valid until the request completes.
pub(super) unsafe fn igatherv(
    send: *const u8,
    send_count: c_int,
    recv: *mut u8,
    counts: *const c_int,
    displs: *const c_int,
) -> Result<ffi::MPI_Request, LinkError> {
    let mut request: ffi::MPI_Request = std::mem::zeroed();
    let rc = ffi::MPI_Igatherv(
        send as *const c_void,
        send_count,
        ffi::RSMPI_UINT8_T,
        recv as *mut c_void,
        counts,
        displs,
        ffi::RSMPI_UINT8_T,
        0,
        SimpleCommunicator::world().as_raw(),
        &mut request,
    );
    started("MPI_Igatherv", rc, request)
}

/// The request of a non-blocking `call` that returned `rc`.
pub(super) fn started(
    call: &str,
    rc: c_int,
    request: ffi::MPI_Request,
) -> Result<ffi::MPI_Request, LinkError> {
    match rc {
        0 => Ok(request),
        rc => Err(LinkError::Channel(format!("{call} returned {rc}"))),
    }
}

/// Starts receiving the matched message `msg` (`len` bytes) into a buffer of its own, so a
/// message whose first piece has arrived never blocks the caller for the rest: a link that
/// dies mid-message leaves the request pending, and the deadline and signals keep running.
pub(super) fn imrecv(
    mut msg: Message,
    len: usize,
) -> Result<(Vec<u8>, ffi::MPI_Request), LinkError> {
    let count =
        c_int::try_from(len).map_err(|_| LinkError::Channel(format!("a {len}-byte message")))?;
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is `len` bytes and outlives the request (kept beside it until it
    // completes, or leaked); MPI sets `msg` to MPI_MESSAGE_NULL, so its drop is clean.
    unsafe {
        let mut request: ffi::MPI_Request = std::mem::zeroed();
        let rc = ffi::MPI_Imrecv(
            buf.as_mut_ptr() as *mut c_void,
            count,
            ffi::RSMPI_UINT8_T,
            msg.as_raw_mut(),
            &mut request,
        );
        started("MPI_Imrecv", rc, request).map(|request| (buf, request))
    }
}

/// Whether `request` has completed.
///
/// # Safety
/// `request` came from a non-blocking call and has not completed before.
pub(super) unsafe fn test(request: &mut ffi::MPI_Request) -> bool {
    let mut flag: c_int = 0;
    ffi::MPI_Test(request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
    flag != 0
}

/// Waits for `request` to complete.
///
/// # Safety
/// As [`test`].
pub(super) unsafe fn wait(request: &mut ffi::MPI_Request) {
    ffi::MPI_Wait(request, ffi::RSMPI_STATUS_IGNORE);
}

/// Each part's byte offset, checked: MPI's displacements are C ints, so the parts of one
/// collective may hold at most 2 GiB in all.
pub(super) fn displacements(counts: &[c_int]) -> Result<Vec<c_int>, LinkError> {
    let mut at: c_int = 0;
    counts
        .iter()
        .map(|&c| {
            let d = at;
            at = at.checked_add(c).ok_or_else(|| {
                LinkError::Channel(format!(
                    "a collective of more than {MAX_MESSAGE_BYTES} bytes in all: MPI counts its offsets in C ints"
                ))
            })?;
            Ok(d)
        })
        .collect()
}
