// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @title Qiyema role registry
/// @notice Who may write what on chain, and who could at any past block. The governor (the
/// platform's operators) administers every other role. Issuers hold one role per record category,
/// so the authority for food permits cannot write metrology records. Banks and inspectors write
/// nothing on chain themselves (their receipts and inspections are records, written under an
/// issuer role), so they hold no chain role.
///
/// Every account's hold on a role is one term, kept for ever: the block it was granted, the block
/// it was retired (OpenZeppelin's `revokeRole`/`renounceRole`: routine, what it wrote before stays
/// good) and, apart from that, whether it was declared compromised from some block on (what it
/// wrote from that block is not to be trusted). A verifier decides whether a write was made by a
/// holder of its role at the block it was made (`heldRoleAt`), not whether the writer holds it
/// now, so retiring a key never breaks an old proof. A term that has ended is not reopened: a key
/// that comes back does so as a new account. Grants and retirements emit OpenZeppelin's
/// `RoleGranted` / `RoleRevoked`; a compromise emits `RoleCompromised`.
interface IRoleRegistry is IAccessControl {
    /// @notice One account's term in one role. All zero: never granted.
    struct RoleTerm {
        uint64 grantedBlock; // the block the role was granted in
        uint64 retiredBlock; // the block it was revoked or renounced in; 0 while held
        uint64 compromisedFromBlock; // writes from this block on are untrusted (when `compromised`)
        bool compromised;
    }

    /// @notice `account`'s term in `role` has ended (retired or compromised); it is not granted again.
    error RoleTermEnded(bytes32 role, address account);
    /// @notice `account` never held `role`.
    error RoleNeverHeld(bytes32 role, address account);
    /// @notice A compromise cannot start after the current block, nor later than one declared before.
    error InvalidCompromiseBlock(bytes32 role, address account, uint64 fromBlock, uint64 limit);
    /// @notice `account` already has a successor, or names itself or the zero address.
    error InvalidSuccessor(address account, address successor);

    /// @notice `account` was declared compromised in `role` from block `fromBlock` on (0: from
    /// its grant: everything it ever wrote). Its role was revoked in the same transaction.
    event RoleCompromised(bytes32 indexed role, address indexed account, uint64 fromBlock, bytes32 reasonCode);
    /// @notice `successor` now writes for `account` (the same organisation's next key).
    event SuccessorDesignated(address indexed account, address indexed successor);

    /// @notice Registers enterprises, sets their status and rotates their code-signing keys.
    function REGISTRAR_ROLE() external view returns (bytes32);

    /// @notice Service window clerks and the material bank itself: anchor batches, revoke leaves.
    function NOTARY_ROLE() external view returns (bytes32);

    /// @notice The role of the issuing authority for one record category.
    /// @param category short category code, right-padded ASCII (e.g. "permit.food").
    /// @return role `keccak256(abi.encode("qiyema.issuer", category))`.
    function issuerRole(bytes32 category) external pure returns (bytes32 role);

    /// @notice Declare `account`'s key in `role` compromised from block `fromBlock` (at most the
    /// current block; 0 for all it ever wrote), revoking the role if still held. Declaring it again
    /// may only move `fromBlock` earlier. The role's admin (the governor) only.
    function declareCompromised(bytes32 role, address account, uint64 fromBlock, bytes32 reasonCode) external;

    /// @notice `account`'s term in `role` (all zero if never granted).
    function roleTerm(bytes32 role, address account) external view returns (RoleTerm memory);

    /// @notice Whether a write `account` made in block `blockNumber` was made by a holder of
    /// `role`: granted at or before that block and not retired before it. Says nothing about
    /// compromise, which a verifier reads from `roleTerm`.
    function heldRoleAt(bytes32 role, address account, uint256 blockNumber) external view returns (bool);

    /// @notice Name `successor` as the next key of the same writer as `account` (a key
    /// rotation): what `account` wrote, `successor` may change. Once per account. Governor only.
    function designateSuccessor(address account, address successor) external;

    /// @notice The key designated to succeed `account` (zero if none).
    function successorOf(address account) external view returns (address);

    /// @notice Whether `account` is `writer` or one of its successors (at most 32 rotations on).
    function isSameWriter(address writer, address account) external view returns (bool);
}
