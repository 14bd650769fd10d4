// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {RoleRegistry} from "./RoleRegistry.sol";
import {EnterpriseRegistry} from "./EnterpriseRegistry.sol";
import {AnchorLedger} from "./AnchorLedger.sol";
import {RecordRegistry} from "./RecordRegistry.sol";

/// @title Qiyema
/// @notice The deployed contract: role registry, enterprise registry, anchor ledger and record
/// registry in one address, so every write checks its role with one internal storage read.
contract Qiyema is RoleRegistry, EnterpriseRegistry, AnchorLedger, RecordRegistry {
    constructor(address governor) RoleRegistry(governor) {}
}
