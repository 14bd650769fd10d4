// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {RoleRegistry} from "./RoleRegistry.sol";
import {IAnchorLedger} from "./interfaces/IAnchorLedger.sol";

abstract contract AnchorLedger is RoleRegistry, IAnchorLedger {
    mapping(bytes32 root => Anchor) private _anchors;
    mapping(bytes32 root => mapping(uint256 word => uint256 bits)) private _revoked;
    mapping(bytes32 root => mapping(bytes32 leaf => bool revoked)) private _revokedLeaves;

    /// @inheritdoc IAnchorLedger
    function anchor(bytes32 root, uint32 leafCount) external onlyRole(NOTARY_ROLE) {
        _anchor(root, leafCount);
    }

    /// @inheritdoc IAnchorLedger
    function revokeLeaf(bytes32 root, bytes32 leaf, bytes32[] calldata proof, bytes32 reasonCode)
        external
        onlyRole(NOTARY_ROLE)
    {
        _anchored(root);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof(root, leaf);
        // Kept by the leaf the proof proves: sorted-pair hashing binds no position.
        if (_revokedLeaves[root][leaf]) revert LeafAlreadyRevokedByProof(root, leaf);
        _revokedLeaves[root][leaf] = true;
        emit LeafRevoked(root, leaf, reasonCode);
    }

    /// @inheritdoc IAnchorLedger
    function revokeLeaves(bytes32 root, uint256[] calldata indexes, bytes32 reasonCode)
        external
        onlyRole(NOTARY_ROLE)
    {
        uint32 leafCount = _anchored(root);
        for (uint256 i = 0; i < indexes.length; ) {
            _revoke(root, leafCount, indexes[i]);
            unchecked {
                ++i;
            }
        }
        emit LeavesRevoked(root, indexes, reasonCode);
    }

    /// @inheritdoc IAnchorLedger
    function anchorOf(bytes32 root) public view returns (Anchor memory) {
        return _anchors[root];
    }

    /// @inheritdoc IAnchorLedger
    function isAnchored(bytes32 root) external view returns (bool) {
        return _anchors[root].anchoredAt != 0;
    }

    /// @inheritdoc IAnchorLedger
    function isRevoked(bytes32 root, uint256 index) external view returns (bool) {
        return _revoked[root][index >> 8] & (1 << (index & 0xff)) != 0;
    }

    /// @inheritdoc IAnchorLedger
    function isLeafRevoked(bytes32 root, bytes32 leaf) external view returns (bool) {
        return _revokedLeaves[root][leaf];
    }

    /// @inheritdoc IAnchorLedger
    function leafStatus(bytes32 root, uint256 index, bytes32 leaf, bytes32 role)
        external
        view
        returns (LeafStatus memory)
    {
        return _leafStatus(root, index, leaf, role);
    }

    /// @inheritdoc IAnchorLedger
    function leafStatuses(bytes32[] calldata roots, uint256[] calldata indexes, bytes32[] calldata leaves,
        bytes32 role) external view returns (LeafStatus[] memory statuses)
    {
        if (roots.length != indexes.length) revert LengthMismatch(roots.length, indexes.length);
        if (roots.length != leaves.length) revert LengthMismatch(roots.length, leaves.length);
        statuses = new LeafStatus[](roots.length);
        for (uint256 i = 0; i < roots.length; ) {
            statuses[i] = _leafStatus(roots[i], indexes[i], leaves[i], role);
            unchecked {
                ++i;
            }
        }
    }

    function _leafStatus(bytes32 root, uint256 index, bytes32 leaf, bytes32 role)
        private
        view
        returns (LeafStatus memory s)
    {
        Anchor memory a = _anchors[root];
        s.anchorer = a.anchorer;
        s.leafCount = a.leafCount;
        s.anchoredAt = a.anchoredAt;
        s.anchoredBlock = a.anchoredBlock;
        s.revoked = _revoked[root][index >> 8] & (1 << (index & 0xff)) != 0 || _revokedLeaves[root][leaf];
        if (a.anchoredAt != 0) {
            RoleTerm storage t = _roleTerm(role, a.anchorer);
            s.anchorerHeldRole = heldRoleAt(role, a.anchorer, a.anchoredBlock);
            s.anchorerRetired = t.retiredBlock != 0;
            s.anchorerCompromised = t.compromised;
            s.compromisedFromBlock = t.compromisedFromBlock;
            s.recordStatus = _recordStatusOf(root, index, a.leafCount);
        }
        s.blockNumber = uint64(block.number);
        s.blockTimestamp = uint64(block.timestamp);
    }

    /// @dev A record's status (IRecordRegistry.RecordStatus) when `root` is a batch of records,
    /// else 0: the record registry answers it.
    function _recordStatusOf(bytes32, uint256, uint32) internal view virtual returns (uint8) {
        return 0;
    }

    /// @dev Shared by notaries' batches and issuers' record batches.
    function _anchor(bytes32 root, uint32 leafCount) internal {
        if (root == bytes32(0) || leafCount == 0) revert InvalidBatch(root, leafCount);
        Anchor storage a = _anchors[root];
        if (a.anchoredAt != 0) revert RootAlreadyAnchored(root);
        // One slot: anchorer, count, time and block stay readable for the price of a single SSTORE.
        _anchors[root] = Anchor({
            anchorer: msg.sender,
            leafCount: leafCount,
            anchoredAt: uint32(block.timestamp),
            anchoredBlock: uint32(block.number)
        });
        emit BatchAnchored(root, msg.sender, leafCount);
    }

    function _anchored(bytes32 root) internal view returns (uint32 leafCount) {
        Anchor storage a = _anchors[root];
        if (a.anchoredAt == 0) revert RootNotAnchored(root);
        return a.leafCount;
    }

    /// @dev One bit per leaf: revoking many leaves of a batch shares storage words.
    function _revoke(bytes32 root, uint32 leafCount, uint256 index) private {
        if (index >= leafCount) revert LeafIndexOutOfRange(root, index, leafCount);
        uint256 mask = 1 << (index & 0xff);
        uint256 bits = _revoked[root][index >> 8];
        if (bits & mask != 0) revert LeafAlreadyRevoked(root, index);
        _revoked[root][index >> 8] = bits | mask;
    }
}
