//! A stand-in for libusb-1.0 that routes USB calls to virtual rockusb boards.
//!
//! Build it (`cargo build -p rockusb-libusb-shim`, giving `libusb_shim.so`) and load it in
//! front of any program linked against `libusb-1.0.so.0`:
//!
//! ```text
//! LD_PRELOAD=target/debug/libusb_shim.so ROCKUSB_SHIM_BOARDS=nanopi-m6 rkdeveloptool ld
//! LD_PRELOAD=target/debug/libusb_shim.so ROCKUSB_SHIM_BOARDS=nanopi-m6 rockusb list
//! ```
//!
//! (`rockusb` must run *without* `ROCKUSB_VIRTUAL`/`--virtual`, or it never calls libusb.)
//! The boards, their folder, the link model and a trace file come from the environment
//! ([`config`]). Each board is a [`rockusb_virtual::VirtualBoard`], whose state
//! lives in its folder, so it survives from one process to the next ([`registry`]).
//! Claiming the interface is exclusive across processes ([`claim`]), so two clients
//! cannot interleave commands on one board: the second gets `LIBUSB_ERROR_BUSY`.
//!
//! What is exported is the synchronous subset of libusb that rusb and rkdeveloptool use,
//! plus its close relatives (configuration, kernel-driver and descriptor calls), each
//! answering as libusb would for a device with one vendor interface (class ff/06/05) and
//! two bulk endpoints. The asynchronous and hotplug APIs answer
//! `LIBUSB_ERROR_NOT_SUPPORTED`. A program that calls a libusb function missing here
//! would reach the real libusb with the shim's pointers, so the integration tests check
//! every libusb import of both clients against this library's exports.

// The exported functions' safety contracts are libusb's, documented in libusb.h; each
// function names the C signature it implements.
#![allow(clippy::missing_safety_doc)]

pub mod claim;
pub mod config;
pub mod device;
pub mod exports;
pub mod ffi;
pub mod guard;
pub mod registry;
