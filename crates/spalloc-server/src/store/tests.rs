//! Tests of the state file: records round trip, faults, migrations.
