//! The native `nanopi-m6` speaks the Talos overlay protocol: the YAML shapes the host
//! sends, stdout/stderr and exit codes. The same checks run under qemu in `aarch64_qemu.rs`.

mod common;

use common::Installer;

#[test]
fn get_options_with_an_empty_map_prints_name_args_and_offset() {
    common::check_get_options_empty_map(&Installer::native());
}

#[test]
fn get_options_accepts_both_indentations_and_string_booleans() {
    common::check_get_options_indentations_and_string_booleans(&Installer::native());
}

#[test]
fn missing_and_unknown_commands_exit_1_with_the_adapter_messages() {
    common::check_missing_and_unknown_commands(&Installer::native());
}

#[test]
fn bad_yaml_and_bad_options_exit_1_with_a_message() {
    common::check_bad_yaml_and_bad_options_fail(&Installer::native());
}

#[test]
fn unknown_options_are_ignored_with_a_warning_on_stderr() {
    common::check_unknown_options_are_ignored_with_a_warning(&Installer::native());
}

#[test]
fn get_options_is_deterministic() {
    // The host calls get-options up to twice per operation and expects the same answer.
    let installer = Installer::native();
    let a = installer.run(&["get-options"], "{}\n");
    let b = installer.run(&["get-options"], "{}\n");
    assert_eq!(a.stdout, b.stdout);
}
