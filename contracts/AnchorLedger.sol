// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {RoleRegistry} from "./RoleRegistry.sol";
import {IAnchorLedger} from "./interfaces/IAnchorLedger.sol";

abstract contract AnchorLedger is RoleRegistry, IAnchorLedger {
    mapping(bytes32 root => Anchor) private _anchors;
    mapping(bytes32 leaf => bool) private _revoked;

    /// @inheritdoc IAnchorLedger
    function anchor(bytes32 root, uint32 leafCount) external onlyRole(NOTARY_ROLE) {
        if (root == bytes32(0) || leafCount == 0) revert InvalidBatch(root, leafCount);
        Anchor storage a = _anchors[root];
        if (a.anchoredAt != 0) revert RootAlreadyAnchored(root);
        // One slot: anchorer, count and time stay readable for the price of a single SSTORE.
        _anchors[root] = Anchor({anchorer: msg.sender, leafCount: leafCount, anchoredAt: uint64(block.timestamp)});
        emit BatchAnchored(root, msg.sender, leafCount);
    }

    /// @inheritdoc IAnchorLedger
    function revokeLeaf(bytes32 root, bytes32 leaf, bytes32[] calldata proof, bytes32 reasonCode)
        external
        onlyRole(NOTARY_ROLE)
    {
        if (_anchors[root].anchoredAt == 0) revert RootNotAnchored(root);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof(root, leaf);
        if (_revoked[leaf]) revert LeafAlreadyRevoked(leaf);
        _revoked[leaf] = true;
        emit LeafRevoked(root, leaf, msg.sender, reasonCode);
    }

    /// @inheritdoc IAnchorLedger
    function anchorOf(bytes32 root) external view returns (Anchor memory) {
        return _anchors[root];
    }

    /// @inheritdoc IAnchorLedger
    function isAnchored(bytes32 root) external view returns (bool) {
        return _anchors[root].anchoredAt != 0;
    }

    /// @inheritdoc IAnchorLedger
    function isRevoked(bytes32 leaf) external view returns (bool) {
        return _revoked[leaf];
    }
}
