// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {RoleRegistry} from "./RoleRegistry.sol";
import {IEnterpriseRegistry} from "./interfaces/IEnterpriseRegistry.sol";

abstract contract EnterpriseRegistry is RoleRegistry, IEnterpriseRegistry {
    mapping(bytes32 usccHash => Enterprise) private _enterprises;
    uint256 private _enterpriseCount;

    /// @inheritdoc IEnterpriseRegistry
    function register(bytes32 usccHash, address codeSigner) external onlyRole(REGISTRAR_ROLE) {
        _register(usccHash, codeSigner);
        unchecked {
            ++_enterpriseCount;
        }
    }

    /// @inheritdoc IEnterpriseRegistry
    function registerBatch(bytes32[] calldata usccHashes) external onlyRole(REGISTRAR_ROLE) {
        uint256 n = usccHashes.length;
        if (n == 0) revert EmptyBatch();
        for (uint256 i = 0; i < n; ) {
            _register(usccHashes[i], address(0));
            unchecked {
                ++i;
            }
        }
        unchecked {
            _enterpriseCount += n;
        }
    }

    /// @inheritdoc IEnterpriseRegistry
    function setStatus(bytes32 usccHash, EnterpriseStatus status, bytes32 reasonCode) external onlyRole(REGISTRAR_ROLE) {
        Enterprise storage e = _existing(usccHash);
        EnterpriseStatus previous = e.status;
        if (status == EnterpriseStatus.None || status == previous) {
            revert InvalidStatusChange(usccHash, previous, status);
        }
        e.status = status;
        emit EnterpriseStatusChanged(usccHash, previous, status, reasonCode);
    }

    /// @inheritdoc IEnterpriseRegistry
    function rotateCodeSigner(bytes32 usccHash, address codeSigner) external onlyRole(REGISTRAR_ROLE) {
        Enterprise storage e = _existing(usccHash);
        address previous = e.codeSigner;
        e.codeSigner = codeSigner;
        emit CodeSignerRotated(usccHash, previous, codeSigner);
    }

    /// @inheritdoc IEnterpriseRegistry
    function enterpriseOf(bytes32 usccHash) external view returns (Enterprise memory) {
        return _enterprises[usccHash];
    }

    /// @inheritdoc IEnterpriseRegistry
    function statusesOf(bytes32[] calldata usccHashes) external view returns (EnterpriseStatus[] memory statuses) {
        statuses = new EnterpriseStatus[](usccHashes.length);
        for (uint256 i = 0; i < usccHashes.length; ++i) {
            statuses[i] = _enterprises[usccHashes[i]].status;
        }
    }

    /// @inheritdoc IEnterpriseRegistry
    function enterpriseCount() external view returns (uint256) {
        return _enterpriseCount;
    }

    function _register(bytes32 usccHash, address codeSigner) private {
        if (usccHash == bytes32(0)) revert InvalidUsccHash();
        Enterprise storage e = _enterprises[usccHash];
        if (e.status != EnterpriseStatus.None) revert EnterpriseAlreadyRegistered(usccHash);
        e.status = EnterpriseStatus.Active;
        e.registeredAt = uint64(block.timestamp);
        e.codeSigner = codeSigner;
        emit EnterpriseRegistered(usccHash, codeSigner);
    }

    /// @dev A registered, not deregistered, enterprise; reverts otherwise.
    function _existing(bytes32 usccHash) private view returns (Enterprise storage e) {
        e = _enterprises[usccHash];
        if (e.status == EnterpriseStatus.None) revert EnterpriseNotRegistered(usccHash);
        if (e.status == EnterpriseStatus.Deregistered) revert EnterpriseIsDeregistered(usccHash);
    }
}
