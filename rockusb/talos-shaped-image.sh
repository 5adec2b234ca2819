# Sourced by demo.sh and wine-check.sh: builds a Talos-shaped disk image with sgdisk and
# compresses it the way Talos does (xz -0 -T0, keeping the .raw beside the .raw.xz).
#
#   talos_shaped_image IMAGE SIZE_MIB EFI_MIB BOOT_MIB EFI_DATA_MIB BOOT_DATA_AT_MIB BOOT_DATA_MIB
#
# The layout the Talos imager gives: GPT entries at LBA 2 + 20480, EFI from 11 MiB, then
# BIOS (1 MiB, legacy-bootable), BOOT and META (1 MiB); an ID block at sector 64 (RKNS and
# 200,000 random bytes); EFI_DATA_MIB of random data at the start of EFI and BOOT_DATA_MIB at
# BOOT_DATA_AT_MIB (an absolute offset inside BOOT).
talos_shaped_image() {
    local image=$1 size=$2 efi=$3 boot=$4 efi_data=$5 boot_data_at=$6 boot_data=$7
    truncate -s "${size}M" "$image"
    sgdisk --move-main-table=20482 \
        -n 1:22528:+"${efi}M" -t 1:EF00 -c 1:EFI \
        -n 2:0:+1M -t 2:EF02 -c 2:BIOS -A 2:set:2 \
        -n 3:0:+"${boot}M" -t 3:8300 -c 3:BOOT \
        -n 4:0:+1M -t 4:8300 -c 4:META "$image" >/dev/null
    { printf 'RKNS'; head -c 200000 /dev/urandom; } | dd of="$image" bs=512 seek=64 conv=notrunc status=none
    head -c $((efi_data << 20)) /dev/urandom | dd of="$image" bs=1M seek=11 conv=notrunc status=none
    head -c $((boot_data << 20)) /dev/urandom | dd of="$image" bs=1M seek="$boot_data_at" conv=notrunc status=none
    xz -0 -T0 -k "$image"
}
