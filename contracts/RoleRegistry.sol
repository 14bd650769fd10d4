// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IRoleRegistry} from "./interfaces/IRoleRegistry.sol";

/// @dev The governor is OpenZeppelin's DEFAULT_ADMIN_ROLE, the admin of every other role.
/// Kept in the same deployment as the ledgers so a role check is one internal SLOAD, which is
/// what keeps a batch anchor under 50,000 gas.
abstract contract RoleRegistry is AccessControl, IRoleRegistry {
    bytes32 public constant GOVERNOR_ROLE = DEFAULT_ADMIN_ROLE;
    bytes32 public constant REGISTRAR_ROLE = keccak256("qiyema.registrar");
    bytes32 public constant NOTARY_ROLE = keccak256("qiyema.notary");
    bytes32 private constant _ISSUER_DOMAIN = "qiyema.issuer";

    mapping(bytes32 role => mapping(address account => RoleTerm)) private _terms;
    mapping(address account => address successor) private _successors;

    constructor(address governor) {
        _grantRole(DEFAULT_ADMIN_ROLE, governor);
    }

    /// @inheritdoc IRoleRegistry
    function issuerRole(bytes32 category) public pure returns (bytes32) {
        return keccak256(abi.encode(_ISSUER_DOMAIN, category));
    }

    /// @inheritdoc IRoleRegistry
    function declareCompromised(bytes32 role, address account, uint64 fromBlock, bytes32 reasonCode)
        external
        onlyRole(getRoleAdmin(role))
    {
        RoleTerm storage t = _terms[role][account];
        if (t.grantedBlock == 0) revert RoleNeverHeld(role, account);
        uint64 limit = t.compromised ? t.compromisedFromBlock : uint64(block.number);
        if (fromBlock > limit || (t.compromised && fromBlock == limit)) {
            revert InvalidCompromiseBlock(role, account, fromBlock, limit);
        }
        t.compromised = true;
        t.compromisedFromBlock = fromBlock;
        _revokeRole(role, account);
        emit RoleCompromised(role, account, fromBlock, reasonCode);
    }

    /// @inheritdoc IRoleRegistry
    function roleTerm(bytes32 role, address account) external view returns (RoleTerm memory) {
        return _terms[role][account];
    }

    /// @inheritdoc IRoleRegistry
    function heldRoleAt(bytes32 role, address account, uint256 blockNumber) public view returns (bool) {
        RoleTerm storage t = _terms[role][account];
        // A write in the retiring block itself came before the revocation (after it, the role
        // check would have refused it), so the retiring block still counts.
        return t.grantedBlock != 0 && t.grantedBlock <= blockNumber
            && (t.retiredBlock == 0 || blockNumber <= t.retiredBlock);
    }

    /// @inheritdoc IRoleRegistry
    function designateSuccessor(address account, address successor) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (successor == address(0) || successor == account || _successors[account] != address(0)) {
            revert InvalidSuccessor(account, successor);
        }
        _successors[account] = successor;
        emit SuccessorDesignated(account, successor);
    }

    /// @inheritdoc IRoleRegistry
    function successorOf(address account) external view returns (address) {
        return _successors[account];
    }

    /// @inheritdoc IRoleRegistry
    function isSameWriter(address writer, address account) public view returns (bool) {
        address at = writer;
        for (uint256 i = 0; i <= 32 && at != address(0); ++i) {
            if (at == account) return true;
            at = _successors[at];
        }
        return false;
    }

    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return interfaceId == type(IRoleRegistry).interfaceId || super.supportsInterface(interfaceId);
    }

    function _roleTerm(bytes32 role, address account) internal view returns (RoleTerm storage) {
        return _terms[role][account];
    }

    function _grantRole(bytes32 role, address account) internal virtual override returns (bool granted) {
        RoleTerm storage t = _terms[role][account];
        if (t.retiredBlock != 0 || t.compromised) revert RoleTermEnded(role, account);
        granted = super._grantRole(role, account);
        if (granted) t.grantedBlock = uint64(block.number);
    }

    function _revokeRole(bytes32 role, address account) internal virtual override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (revoked) _terms[role][account].retiredBlock = uint64(block.number);
    }
}
