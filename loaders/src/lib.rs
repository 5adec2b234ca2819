//! Rockchip loader formats: the RKBOOT/LDR container, RKNS ID blocks and the SoC table.
