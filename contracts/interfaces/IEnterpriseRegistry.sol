// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Qiyema enterprise registry
/// @notice One entry per market entity, keyed by `usccHash`, a domain-separated hash of its
/// Unified Social Credit Code; the plain USCC never goes on chain. Only the registrar writes.
interface IEnterpriseRegistry {
    /// @notice Lifecycle of a market entity. `None` means "never registered".
    /// Active = 存续, Abnormal = 经营异常, Revoked = 吊销, Deregistered = 注销 (final).
    enum EnterpriseStatus {
        None,
        Active,
        Abnormal,
        Revoked,
        Deregistered
    }

    /// @notice On-chain record of one enterprise, packed in a single storage slot.
    struct Enterprise {
        EnterpriseStatus status;
        uint64 registeredAt;
        address codeSigner;
    }

    /// @notice `usccHash` is already registered.
    error EnterpriseAlreadyRegistered(bytes32 usccHash);
    /// @notice `usccHash` was never registered.
    error EnterpriseNotRegistered(bytes32 usccHash);
    /// @notice A deregistered (注销) enterprise cannot change any more.
    error EnterpriseIsDeregistered(bytes32 usccHash);
    /// @notice `status` cannot be set (it is `None`, or equal to the current status).
    error InvalidStatusChange(bytes32 usccHash, EnterpriseStatus current, EnterpriseStatus requested);
    /// @notice The zero hash is not a valid enterprise key.
    error InvalidUsccHash();
    /// @notice The batch is empty.
    error EmptyBatch();

    /// @notice A new enterprise was registered as Active.
    event EnterpriseRegistered(bytes32 indexed usccHash, address indexed codeSigner);
    /// @notice An enterprise's status changed.
    event EnterpriseStatusChanged(
        bytes32 indexed usccHash,
        EnterpriseStatus previous,
        EnterpriseStatus current,
        bytes32 reasonCode
    );
    /// @notice The key that signs an enterprise's codes was replaced.
    event CodeSignerRotated(bytes32 indexed usccHash, address indexed previous, address indexed current);

    /// @notice Register one enterprise as Active. Registrar only.
    /// @param codeSigner the enterprise's code-signing account, or zero if none yet.
    function register(bytes32 usccHash, address codeSigner) external;

    /// @notice Register many enterprises in one transaction (onboarding an existing register).
    /// Reverts as a whole if any of them is already registered. Registrar only.
    function registerBatch(bytes32[] calldata usccHashes) external;

    /// @notice Change an enterprise's status. Registrar only.
    /// @param reasonCode a short machine-readable reason (e.g. "court-order"), never personal data.
    function setStatus(bytes32 usccHash, EnterpriseStatus status, bytes32 reasonCode) external;

    /// @notice Replace the enterprise's code-signing account. Registrar only.
    function rotateCodeSigner(bytes32 usccHash, address codeSigner) external;

    /// @notice The record of one enterprise (status `None` if never registered).
    function enterpriseOf(bytes32 usccHash) external view returns (Enterprise memory);

    /// @notice The status of each of `usccHashes`, in order.
    function statusesOf(bytes32[] calldata usccHashes) external view returns (EnterpriseStatus[] memory);

    /// @notice How many enterprises were ever registered.
    function enterpriseCount() external view returns (uint256);
}
