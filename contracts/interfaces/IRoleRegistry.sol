// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @title Qiyema role registry
/// @notice Who may write what on chain. The governor (the platform's operators) administers every
/// other role. Issuers hold one role per record category, so the authority for food permits
/// cannot write metrology records. Every role here gates writes; banks and inspectors write
/// nothing on chain themselves (their receipts and inspections are records, written under an
/// issuer role), so they hold no chain role. Grants and revocations emit OpenZeppelin's
/// `RoleGranted` / `RoleRevoked` events.
interface IRoleRegistry is IAccessControl {
    /// @notice Registers enterprises, sets their status and rotates their code-signing keys.
    function REGISTRAR_ROLE() external view returns (bytes32);

    /// @notice Service window clerks and the material bank itself: anchor batches, revoke leaves.
    function NOTARY_ROLE() external view returns (bytes32);

    /// @notice The role of the issuing authority for one record category.
    /// @param category short category code, right-padded ASCII (e.g. "permit.food").
    /// @return role `keccak256(abi.encode("qiyema.issuer", category))`.
    function issuerRole(bytes32 category) external pure returns (bytes32 role);
}
