// SPDX-License-Identifier: Apache-2.0
// Deployed: the compiler is pinned (contracts/solc-settings.json) so the bytecode a verifier
// rebuilds is the bytecode on chain.
pragma solidity 0.8.28;

import {AnchorLedger} from "./AnchorLedger.sol";
import {EnterpriseRegistry} from "./EnterpriseRegistry.sol";
import {RecordRegistry} from "./RecordRegistry.sol";
import {RoleRegistry} from "./RoleRegistry.sol";
import {IAnchorLedger} from "./interfaces/IAnchorLedger.sol";
import {IEnterpriseRegistry} from "./interfaces/IEnterpriseRegistry.sol";
import {IQiyema} from "./interfaces/IQiyema.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";

/// @title Qiyema
/// @notice The deployed contract: role registry, enterprise registry, anchor ledger and record
/// registry in one address, so every write checks its role with one internal storage read.
contract Qiyema is RoleRegistry, EnterpriseRegistry, AnchorLedger, RecordRegistry, IQiyema {
    string private constant _VERSION = "1.6.0";

    constructor(address governor) RoleRegistry(governor) {}

    /// @inheritdoc IQiyema
    function version() external pure returns (string memory) {
        return _VERSION;
    }

    function _recordStatusOf(bytes32 root, uint256 index, uint32 leafCount)
        internal
        view
        override(AnchorLedger, RecordRegistry)
        returns (uint8)
    {
        return RecordRegistry._recordStatusOf(root, index, leafCount);
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(IQiyema).interfaceId || interfaceId == type(IEnterpriseRegistry).interfaceId
            || interfaceId == type(IAnchorLedger).interfaceId || interfaceId == type(IRecordRegistry).interfaceId
            || super.supportsInterface(interfaceId);
    }
}
