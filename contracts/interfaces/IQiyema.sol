// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAnchorLedger} from "./IAnchorLedger.sol";
import {IEnterpriseRegistry} from "./IEnterpriseRegistry.sol";
import {IRecordRegistry} from "./IRecordRegistry.sol";
import {IRoleRegistry} from "./IRoleRegistry.sol";

/// @title Qiyema
/// @notice The deployed contract: role registry, enterprise registry, anchor ledger and record
/// registry behind one address. `supportsInterface` (ERC-165) answers true for each of the four
/// interfaces, for this one and for OpenZeppelin's IAccessControl.
interface IQiyema is IRoleRegistry, IEnterpriseRegistry, IAnchorLedger, IRecordRegistry {
    /// @notice The version of this contract's interface and behaviour, `major.minor.patch`:
    /// a verifier may refuse a major version it does not know.
    function version() external pure returns (string memory);
}
